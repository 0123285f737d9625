//! `node_filefd_allocated` and `node_filefd_maximum` from `/proc/sys/fs/file-nr` (node_exporter
//! filefd_linux.go).

use std::path::PathBuf;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The `filefd` collector.
#[derive(Debug)]
pub struct Filefd {
    path: PathBuf,
}

impl Filefd {
    pub fn new(paths: &Paths) -> Self {
        Filefd {
            path: paths.proc.join("sys/fs/file-nr"),
        }
    }
}

impl Collector for Filefd {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let text = read(&self.path)?;
        // One line: allocated, unused (always 0 since Linux 2.6), maximum.
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() < 3 {
            return Err(Error::parse(&self.path, 1, "expected 3 fields"));
        }
        for (name, field) in [("allocated", fields[0]), ("maximum", fields[2])] {
            let v: f64 = field
                .parse()
                .map_err(|_| Error::parse(&self.path, 1, format!("invalid value {field:?}")))?;
            sink.gauge(
                &format!("node_filefd_{name}"),
                &format!("File descriptor statistics: {name}."),
                &[],
                v,
            );
        }
        Ok(())
    }
}
