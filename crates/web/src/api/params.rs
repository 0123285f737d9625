//! Request parameters as upstream reads them (`r.ParseForm`: a POST form body's values first,
//! then the URL's), and the API's time and duration syntax.

use axum::extract::{FromRequest, Request};
use axum::response::Response;
use http::{Method, header};

use super::{ApiError, MAX_TIME_MS, MIN_TIME_MS};

/// The largest form body read (upstream has no explicit limit; this keeps a request from
/// exhausting memory).
const MAX_FORM_BYTES: usize = 16 << 20;

/// All parameters of a request, in upstream's order, repeated names kept (`match[]`).
#[derive(Clone, Debug, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Parameter `name` as a time, or `default` when absent or empty.
    pub fn time_or(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            // Upstream's parseTimeParam wraps the parse error once more.
            Some(s) => parse_time_ms(s).map_err(|e| {
                ApiError::bad_data(format!(
                    "invalid parameter \"{name}\": invalid time value for '{name}': {e}"
                ))
            }),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Response> {
        let mut pairs = Vec::new();
        let query: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if (req.method() == Method::POST || req.method() == Method::PUT) && is_form {
            let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
                .await
                .map_err(|e| ApiError::bad_data(format!("error parsing form values: {e}")).into_response())?;
            pairs.extend(url::form_urlencoded::parse(&body).into_owned());
        }
        pairs.extend(query);
        Ok(Params(pairs))
    }
}

/// Parses an API timestamp into milliseconds: Unix seconds as a float (rounded to the
/// millisecond, as upstream does) or RFC 3339, including upstream's spellings of its minimum
/// and maximum times.
pub fn parse_time_ms(s: &str) -> Result<i64, String> {
    let err = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(t) = s.parse::<f64>() {
        if !t.is_finite() {
            return Err(err());
        }
        let secs = t.trunc();
        let ms = ((t - secs) * 1000.0).round();
        let total = secs * 1000.0 + ms;
        if total < i64::MIN as f64 || total > i64::MAX as f64 {
            return Err(err());
        }
        return Ok(total as i64);
    }
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    let ts: jiff::Timestamp = s.parse().map_err(|_| err())?;
    Ok(ts.as_millisecond())
}

/// Parses an API duration into milliseconds: float seconds or Prometheus' duration syntax.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(d) = s.parse::<f64>() {
        let ms = d * 1000.0;
        if !ms.is_finite() || ms > i64::MAX as f64 || ms < i64::MIN as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    watchfire_model::Duration::parse(s)
        .map(|d| d.as_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_upstream() {
        assert_eq!(parse_time_ms("1435781451.781").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time_ms("1435781451").unwrap(), 1_435_781_451_000);
        assert_eq!(parse_time_ms("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(
            parse_time_ms("2015-07-01T22:10:51.781+02:00").unwrap(),
            1_435_781_451_781
        );
        assert_eq!(parse_time_ms("-292273086-05-16T16:47:06Z").unwrap(), MIN_TIME_MS);
        assert!(
            parse_time_ms("yesterday")
                .unwrap_err()
                .contains("cannot parse \"yesterday\"")
        );
        assert!(parse_time_ms("NaN").is_err());
    }

    #[test]
    fn durations_parse_like_upstream() {
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("0.5").unwrap(), 500);
        assert_eq!(parse_duration_ms("1m30s").unwrap(), 90_000);
        assert!(parse_duration_ms("1e30").unwrap_err().contains("overflows"));
        assert!(parse_duration_ms("soon").is_err());
    }
}
