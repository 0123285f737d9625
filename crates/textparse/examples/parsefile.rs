//! Parses an exposition file repeatedly and prints how many series it holds; for instruction
//! counts of the parsers under valgrind, where criterion's timings are too noisy:
//!
//! ```text
//! cargo build --release -p watchfire-textparse --example parsefile
//! valgrind --tool=callgrind target/release/examples/parsefile text FILE 10 [labels]
//! ```
//!
//! `FORMAT` is `text`, `openmetrics` or `protobuf`; with `labels` the `Labels` of every
//! series are built too.

use watchfire_textparse::{Entry, Format, Parser};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, format, file, rest @ ..] = args.as_slice() else {
        return Err("usage: parsefile text|openmetrics|protobuf FILE [ITERATIONS] [labels]".into());
    };
    let format = match format.as_str() {
        "text" => Format::Text,
        "openmetrics" => Format::OpenMetrics,
        "protobuf" => Format::Protobuf,
        other => return Err(format!("unknown format {other:?}").into()),
    };
    let iterations: usize = rest.first().map_or(Ok(1), |n| n.parse())?;
    let labels = rest.get(1).is_some_and(|a| a == "labels");
    let body = std::fs::read(file)?;
    let mut series = 0usize;
    let mut label_count = 0usize;
    for _ in 0..iterations {
        let mut p = Parser::new(format, &body);
        while let Some(e) = p.next()? {
            if let Entry::Series(s) = e {
                series += 1;
                if labels {
                    label_count += s.to_labels().len();
                }
            }
        }
    }
    println!(
        "{} bytes, {} series per pass, {label_count} labels built",
        body.len(),
        series / iterations.max(1)
    );
    Ok(())
}
