//! Writing the Prometheus text format, as `expfmt` (Prometheus' `common/expfmt`
//! `MetricFamilyToText`) prints it for `/metrics` and `/federate`.

use std::io;

use watchfire_model::{
    Label, Labels, METRIC_NAME, format_go_float, is_valid_legacy_label_name, is_valid_legacy_metric_name,
};

use crate::MetricType;

/// The `Content-Type` of what [`TextWriter`] writes.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes `# HELP`, `# TYPE` and sample lines of the text format.
///
/// Values print in Go's shortest `'g'` form (`8.253063168e+09`, `+Inf`, `NaN`), label values
/// with `\\`, `\"` and `\n` escaped, help with `\\` and `\n` escaped. Names that are not
/// valid legacy names are written in the quoted form of text format 1.0.0
/// (`{"my.metric","my.label"="x"} 1`), which Prometheus 3 parses; callers that serve
/// version 0.0.4 to older scrapers must escape such names first. Writes go straight to `W`;
/// wrap it in a `BufWriter` when it is unbuffered.
#[derive(Debug)]
pub struct TextWriter<W> {
    out: W,
    line: String,
}

impl<W: io::Write> TextWriter<W> {
    /// A writer to `out`.
    pub fn new(out: W) -> Self {
        TextWriter {
            out,
            line: String::with_capacity(256),
        }
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// `# HELP name help`.
    pub fn write_help(&mut self, name: &str, help: &str) -> io::Result<()> {
        self.line.clear();
        self.line.push_str("# HELP ");
        push_metadata_name(&mut self.line, name);
        self.line.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.line.push_str("\\\\"),
                '\n' => self.line.push_str("\\n"),
                c => self.line.push(c),
            }
        }
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    /// `# TYPE name type`. The text format knows counter, gauge, histogram, summary and
    /// untyped; every other type is written as `untyped`.
    pub fn write_type(&mut self, name: &str, kind: MetricType) -> io::Result<()> {
        self.line.clear();
        self.line.push_str("# TYPE ");
        push_metadata_name(&mut self.line, name);
        self.line.push_str(match kind {
            MetricType::Counter => " counter\n",
            MetricType::Gauge => " gauge\n",
            MetricType::Histogram => " histogram\n",
            MetricType::Summary => " summary\n",
            _ => " untyped\n",
        });
        self.out.write_all(self.line.as_bytes())
    }

    /// A sample of the series `labels` (whose `__name__` is the metric name).
    pub fn write_sample(&mut self, labels: &Labels, value: f64, timestamp: Option<i64>) -> io::Result<()> {
        let name = labels.metric_name().unwrap_or("");
        self.write_series(name, labels.iter().filter(|l| l.name != METRIC_NAME), value, timestamp)
    }

    /// A sample line from its parts; labels are written in the order given.
    pub fn write_series<'l>(
        &mut self,
        name: &str,
        labels: impl IntoIterator<Item = Label<'l>>,
        value: f64,
        timestamp: Option<i64>,
    ) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        let legacy_name = is_valid_legacy_metric_name(name);
        let mut open = false;
        if legacy_name {
            line.push_str(name);
        } else {
            line.push('{');
            push_quoted(line, name);
            open = true;
        }
        for l in labels {
            line.push(if open { ',' } else { '{' });
            open = true;
            if is_valid_legacy_label_name(l.name) {
                line.push_str(l.name);
            } else {
                push_quoted(line, l.name);
            }
            line.push('=');
            push_quoted(line, l.value);
        }
        if open {
            line.push('}');
        }
        line.push(' ');
        line.push_str(&format_go_float(value));
        if let Some(ts) = timestamp {
            line.push(' ');
            line.push_str(&ts.to_string());
        }
        line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }
}

fn push_metadata_name(line: &mut String, name: &str) {
    if is_valid_legacy_metric_name(name) {
        line.push_str(name);
    } else {
        push_quoted(line, name);
    }
}

/// `s` in double quotes with the label-value escapes.
fn push_quoted(line: &mut String, s: &str) {
    line.push('"');
    for c in s.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '"' => line.push_str("\\\""),
            '\n' => line.push_str("\\n"),
            c => line.push(c),
        }
    }
    line.push('"');
}
