//! `node_uname_info{sysname,release,version,machine,nodename,domainname}` (node_exporter
//! uname.go, uname_linux.go).
//!
//! Upstream calls `uname(2)`; all fields but `machine` are also in `/proc/sys/kernel`
//! (same UTS namespace), which is what is read here so fixtures can supply them. `machine`
//! comes from `uname(2)`.

use std::path::PathBuf;

use crate::collector::read;
use crate::{Collector, Error, Paths, Sink};

/// The `uname` collector.
#[derive(Debug)]
pub struct Uname {
    kernel: PathBuf,
}

impl Uname {
    pub fn new(paths: &Paths) -> Self {
        Uname {
            kernel: paths.proc.join("sys/kernel"),
        }
    }
}

impl Collector for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn update(&mut self, sink: &mut Sink) -> Result<(), Error> {
        let field = |f: &str| -> Result<String, Error> {
            let t = read(&self.kernel.join(f))?;
            Ok(t.strip_suffix('\n').unwrap_or(&t).to_owned())
        };
        let sysname = field("ostype")?;
        let release = field("osrelease")?;
        let version = field("version")?;
        let nodename = field("hostname")?;
        let domainname = field("domainname")?;
        let machine = crate::sys::machine().map_err(|e| Error::io("uname(2)", e))?;
        sink.gauge(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
            &[
                ("sysname", &sysname),
                ("release", &release),
                ("version", &version),
                ("machine", &machine),
                ("nodename", &nodename),
                ("domainname", &domainname),
            ],
            1.0,
        );
        Ok(())
    }
}
