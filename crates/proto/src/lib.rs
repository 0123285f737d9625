//! Protobuf messages of Prometheus' remote write and remote read protocols, written by hand
//! with `prost` derives so that no `protoc` is needed at build time.
//!
//! [`prompb`] mirrors upstream's `prompb/types.proto` and `prompb/remote.proto` (package
//! `prometheus`: remote write 1.0 and remote read); [`write_v2`] mirrors
//! `prompb/io/prometheus/write/v2/types.proto` (package `io.prometheus.write.v2`, remote
//! write 2.0). Field numbers, wire types (`sint32`/`sint64` zig-zag, packed repeated scalars)
//! and enum values are exactly those of the `.proto` files; the tests below pin the encoding
//! of every message against hand-assembled bytes.

/// Package `prometheus`: `types.proto` and `remote.proto`.
pub mod prompb {
    /// `prometheus.MetricMetadata`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(enumeration = "metric_metadata::MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// Nested types of [`MetricMetadata`].
    pub mod metric_metadata {
        /// `prometheus.MetricMetadata.MetricType`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum MetricType {
            Unknown = 0,
            Counter = 1,
            Gauge = 2,
            Histogram = 3,
            Gaugehistogram = 4,
            Summary = 5,
            Info = 6,
            Stateset = 7,
        }
    }

    /// `prometheus.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// `prometheus.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `prometheus.Histogram` (native histogram).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(oneof = "histogram::Count", tags = "1, 2")]
        pub count: Option<histogram::Count>,
        #[prost(double, tag = "3")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(double, tag = "5")]
        pub zero_threshold: f64,
        #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
        pub zero_count: Option<histogram::ZeroCount>,
        #[prost(message, repeated, tag = "8")]
        pub negative_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "9")]
        pub negative_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "10")]
        pub negative_counts: Vec<f64>,
        #[prost(message, repeated, tag = "11")]
        pub positive_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "12")]
        pub positive_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "13")]
        pub positive_counts: Vec<f64>,
        #[prost(enumeration = "histogram::ResetHint", tag = "14")]
        pub reset_hint: i32,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
        #[prost(double, repeated, tag = "16")]
        pub custom_values: Vec<f64>,
    }

    /// Nested types of [`Histogram`].
    pub mod histogram {
        /// `prometheus.Histogram.ResetHint`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum ResetHint {
            Unknown = 0,
            Yes = 1,
            No = 2,
            Gauge = 3,
        }

        /// The `count` oneof.
        #[derive(Clone, Copy, PartialEq, prost::Oneof)]
        pub enum Count {
            #[prost(uint64, tag = "1")]
            CountInt(u64),
            #[prost(double, tag = "2")]
            CountFloat(f64),
        }

        /// The `zero_count` oneof.
        #[derive(Clone, Copy, PartialEq, prost::Oneof)]
        pub enum ZeroCount {
            #[prost(uint64, tag = "6")]
            ZeroCountInt(u64),
            #[prost(double, tag = "7")]
            ZeroCountFloat(f64),
        }
    }

    /// `prometheus.BucketSpan`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }

    /// `prometheus.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// `prometheus.Label`.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    impl Label {
        /// A label from its name and value.
        pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
            Label {
                name: name.into(),
                value: value.into(),
            }
        }
    }

    /// `prometheus.Labels`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Labels {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
    }

    /// `prometheus.LabelMatcher`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelMatcher {
        #[prost(enumeration = "label_matcher::Type", tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "3")]
        pub value: String,
    }

    /// Nested types of [`LabelMatcher`].
    pub mod label_matcher {
        /// `prometheus.LabelMatcher.Type`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum Type {
            Eq = 0,
            Neq = 1,
            Re = 2,
            Nre = 3,
        }
    }

    /// `prometheus.ReadHints`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadHints {
        #[prost(int64, tag = "1")]
        pub step_ms: i64,
        #[prost(string, tag = "2")]
        pub func: String,
        #[prost(int64, tag = "3")]
        pub start_ms: i64,
        #[prost(int64, tag = "4")]
        pub end_ms: i64,
        #[prost(string, repeated, tag = "5")]
        pub grouping: Vec<String>,
        #[prost(bool, tag = "6")]
        pub by: bool,
        #[prost(int64, tag = "7")]
        pub range_ms: i64,
    }

    /// `prometheus.Chunk`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Chunk {
        #[prost(int64, tag = "1")]
        pub min_time_ms: i64,
        #[prost(int64, tag = "2")]
        pub max_time_ms: i64,
        #[prost(enumeration = "chunk::Encoding", tag = "3")]
        pub r#type: i32,
        #[prost(bytes = "vec", tag = "4")]
        pub data: Vec<u8>,
    }

    /// Nested types of [`Chunk`].
    pub mod chunk {
        /// `prometheus.Chunk.Encoding`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum Encoding {
            Unknown = 0,
            Xor = 1,
            Histogram = 2,
            FloatHistogram = 3,
            Xor2 = 4,
            HistogramSt = 5,
            FloatHistogramSt = 6,
        }
    }

    /// `prometheus.ChunkedSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ChunkedSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub chunks: Vec<Chunk>,
    }

    /// `prometheus.WriteRequest` (remote write 1.0).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// `prometheus.ReadRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadRequest {
        #[prost(message, repeated, tag = "1")]
        pub queries: Vec<Query>,
        #[prost(enumeration = "read_request::ResponseType", repeated, tag = "2")]
        pub accepted_response_types: Vec<i32>,
    }

    /// Nested types of [`ReadRequest`].
    pub mod read_request {
        /// `prometheus.ReadRequest.ResponseType`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum ResponseType {
            Samples = 0,
            StreamedXorChunks = 1,
        }
    }

    /// `prometheus.ReadResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReadResponse {
        #[prost(message, repeated, tag = "1")]
        pub results: Vec<QueryResult>,
    }

    /// `prometheus.Query`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Query {
        #[prost(int64, tag = "1")]
        pub start_timestamp_ms: i64,
        #[prost(int64, tag = "2")]
        pub end_timestamp_ms: i64,
        #[prost(message, repeated, tag = "3")]
        pub matchers: Vec<LabelMatcher>,
        #[prost(message, optional, tag = "4")]
        pub hints: Option<ReadHints>,
    }

    /// `prometheus.QueryResult`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct QueryResult {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `prometheus.ChunkedReadResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ChunkedReadResponse {
        #[prost(message, repeated, tag = "1")]
        pub chunked_series: Vec<ChunkedSeries>,
        #[prost(int64, tag = "2")]
        pub query_index: i64,
    }
}

/// Package `io.prometheus.write.v2` (remote write 2.0).
pub mod write_v2 {
    /// The full name of [`Request`], as sent in `Content-Type: application/x-protobuf;proto=...`.
    pub const REQUEST_NAME: &str = "io.prometheus.write.v2.Request";

    /// `io.prometheus.write.v2.Request`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// `io.prometheus.write.v2.TimeSeries`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
    }

    /// `io.prometheus.write.v2.Exemplar`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// `io.prometheus.write.v2.Sample`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
        #[prost(int64, tag = "3")]
        pub start_timestamp: i64,
    }

    /// `io.prometheus.write.v2.Metadata`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(enumeration = "metadata::MetricType", tag = "1")]
        pub r#type: i32,
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    /// Nested types of [`Metadata`].
    pub mod metadata {
        /// `io.prometheus.write.v2.Metadata.MetricType`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum MetricType {
            Unspecified = 0,
            Counter = 1,
            Gauge = 2,
            Histogram = 3,
            Gaugehistogram = 4,
            Summary = 5,
            Info = 6,
            Stateset = 7,
        }
    }

    /// `io.prometheus.write.v2.Histogram`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(oneof = "histogram::Count", tags = "1, 2")]
        pub count: Option<histogram::Count>,
        #[prost(double, tag = "3")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(double, tag = "5")]
        pub zero_threshold: f64,
        #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
        pub zero_count: Option<histogram::ZeroCount>,
        #[prost(message, repeated, tag = "8")]
        pub negative_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "9")]
        pub negative_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "10")]
        pub negative_counts: Vec<f64>,
        #[prost(message, repeated, tag = "11")]
        pub positive_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "12")]
        pub positive_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "13")]
        pub positive_counts: Vec<f64>,
        #[prost(enumeration = "histogram::ResetHint", tag = "14")]
        pub reset_hint: i32,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
        #[prost(double, repeated, tag = "16")]
        pub custom_values: Vec<f64>,
        #[prost(int64, tag = "17")]
        pub start_timestamp: i64,
    }

    /// Nested types of [`Histogram`].
    pub mod histogram {
        /// `io.prometheus.write.v2.Histogram.ResetHint`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
        #[repr(i32)]
        pub enum ResetHint {
            Unspecified = 0,
            Yes = 1,
            No = 2,
            Gauge = 3,
        }

        /// The `count` oneof.
        #[derive(Clone, Copy, PartialEq, prost::Oneof)]
        pub enum Count {
            #[prost(uint64, tag = "1")]
            CountInt(u64),
            #[prost(double, tag = "2")]
            CountFloat(f64),
        }

        /// The `zero_count` oneof.
        #[derive(Clone, Copy, PartialEq, prost::Oneof)]
        pub enum ZeroCount {
            #[prost(uint64, tag = "6")]
            ZeroCountInt(u64),
            #[prost(double, tag = "7")]
            ZeroCountFloat(f64),
        }
    }

    /// `io.prometheus.write.v2.BucketSpan`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn write_request_bytes_match_the_proto() {
        let req = prompb::WriteRequest {
            timeseries: vec![prompb::TimeSeries {
                labels: vec![prompb::Label::new("a", "b")],
                samples: vec![prompb::Sample {
                    value: 1.0,
                    timestamp: 2,
                }],
                ..Default::default()
            }],
            metadata: vec![prompb::MetricMetadata {
                r#type: prompb::metric_metadata::MetricType::Counter as i32,
                metric_family_name: "m".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        let bytes = req.encode_to_vec();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x0a, 21, // timeseries, field 1, len 21
              0x0a, 6, 0x0a, 1, b'a', 0x12, 1, b'b', // label
              0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 2, // sample 1.0 @ 2
            0x1a, 8, // metadata, field 3
              0x08, 1, 0x12, 1, b'm', 0x22, 1, b'h',
        ];
        assert_eq!(bytes, want);
        assert_eq!(prompb::WriteRequest::decode(&bytes[..]).unwrap(), req);
    }

    #[test]
    fn sint_fields_are_zigzag_and_repeated_scalars_packed() {
        let h = prompb::Histogram {
            schema: -1,
            positive_deltas: vec![-1, 1],
            count: Some(prompb::histogram::Count::CountInt(3)),
            ..Default::default()
        };
        let bytes = h.encode_to_vec();
        // count_int=3 (field 1 varint), schema=-1 zigzag 1 (field 4), deltas packed (field 12).
        assert_eq!(bytes, vec![0x08, 3, 0x20, 1, 0x62, 2, 1, 2]);
        let span = prompb::BucketSpan { offset: -2, length: 3 };
        assert_eq!(span.encode_to_vec(), vec![0x08, 3, 0x10, 3]);
    }

    #[test]
    fn v2_request_bytes_match_the_proto() {
        let req = write_v2::Request {
            symbols: vec![String::new(), "__name__".into(), "up".into()],
            timeseries: vec![write_v2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![write_v2::Sample {
                    value: 0.0,
                    timestamp: 5,
                    start_timestamp: 0,
                }],
                metadata: Some(write_v2::Metadata {
                    r#type: write_v2::metadata::MetricType::Gauge as i32,
                    help_ref: 0,
                    unit_ref: 0,
                }),
                ..Default::default()
            }],
        };
        let bytes = req.encode_to_vec();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x22, 0, 0x22, 8, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x22, 2, b'u', b'p',
            0x2a, 12,
              0x0a, 2, 1, 2, // labels_refs packed
              0x12, 2, 0x10, 5, // sample: timestamp 5
              0x2a, 2, 0x08, 2, // metadata: type gauge
        ];
        assert_eq!(bytes, want);
        assert_eq!(write_v2::Request::decode(&bytes[..]).unwrap(), req);
    }

    #[test]
    fn read_messages_round_trip() {
        let req = prompb::ReadRequest {
            queries: vec![prompb::Query {
                start_timestamp_ms: 1,
                end_timestamp_ms: 2,
                matchers: vec![prompb::LabelMatcher {
                    r#type: prompb::label_matcher::Type::Re as i32,
                    name: "job".into(),
                    value: "a.*".into(),
                }],
                hints: None,
            }],
            accepted_response_types: vec![prompb::read_request::ResponseType::StreamedXorChunks as i32],
        };
        let bytes = req.encode_to_vec();
        assert_eq!(prompb::ReadRequest::decode(&bytes[..]).unwrap(), req);
        // accepted_response_types is packed: field 2, wire type 2.
        assert_eq!(&bytes[bytes.len() - 3..], &[0x12, 1, 1]);
        let resp = prompb::ChunkedReadResponse {
            chunked_series: vec![prompb::ChunkedSeries {
                labels: vec![prompb::Label::new("a", "b")],
                chunks: vec![prompb::Chunk {
                    min_time_ms: 1,
                    max_time_ms: 2,
                    r#type: prompb::chunk::Encoding::Xor as i32,
                    data: vec![0, 1],
                }],
            }],
            query_index: 3,
        };
        let bytes = resp.encode_to_vec();
        assert_eq!(prompb::ChunkedReadResponse::decode(&bytes[..]).unwrap(), resp);
    }
}
