//! The three system calls the collectors need and `/proc` does not offer: `statfs(2)`
//! (filesystem sizes), `uname(2)` (the machine) and `localtime_r(3)` (the zone name and
//! offset). Everything else is read from files.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::FsStat;

/// `statfs(2)` of `path`, in the units node_exporter reports (`Blocks * Bsize`, as its
/// filesystem_linux.go `processStat`).
pub(crate) fn statfs(path: &Path) -> io::Result<FsStat> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut buf = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path that outlives the call and `buf` points to writable
    // memory of the size `statfs` expects.
    let rc = unsafe { libc::statfs(c.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `statfs` returned 0, so it filled the whole struct (and it was zeroed before).
    let s = unsafe { buf.assume_init() };
    let bsize = s.f_bsize as f64;
    Ok(FsStat {
        size: s.f_blocks as f64 * bsize,
        free: s.f_bfree as f64 * bsize,
        avail: s.f_bavail as f64 * bsize,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
    })
}

/// `uname(2)`'s `machine` field (`x86_64`, `aarch64`, `armv7l`).
pub(crate) fn machine() -> io::Result<String> {
    let mut buf = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `buf` points to writable memory the size of `utsname`.
    let rc = unsafe { libc::uname(buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `uname` returned 0 and filled the struct, whose fields are NUL-terminated.
    let u = unsafe { buf.assume_init() };
    // SAFETY: `machine` is a NUL-terminated array inside `u`, which lives to the end of scope.
    let m = unsafe { CStr::from_ptr(u.machine.as_ptr()) };
    Ok(m.to_string_lossy().into_owned())
}

/// The local time zone's abbreviation and offset east of UTC in seconds at `unix_seconds`,
/// what Go's `time.Now().Zone()` returns.
pub(crate) fn local_zone(unix_seconds: i64) -> (String, i64) {
    let t: libc::time_t = unix_seconds as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: `t` and `tm` are valid for the call; `localtime_r` is the thread-safe variant.
    let r = unsafe { libc::localtime_r(&t, tm.as_mut_ptr()) };
    if r.is_null() {
        return ("UTC".to_owned(), 0);
    }
    // SAFETY: `localtime_r` succeeded and filled `tm`.
    let tm = unsafe { tm.assume_init() };
    let name = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: glibc and musl point `tm_zone` at a static NUL-terminated abbreviation.
        unsafe { CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    // `c_long` is `i64` on 64-bit targets but `i32` on 32-bit ARM boards.
    #[allow(clippy::useless_conversion)]
    let offset = i64::from(tm.tm_gmtoff);
    (name, offset)
}
