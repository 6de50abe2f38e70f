//! Memory that does not grow with the block, measured: a child process (this
//! test binary, running the ignored `probe` test) splits a synthetic block
//! into window streams on disk and joins them back, then reports its peak
//! resident set (`VmHWM`). The block has 1 000 series once and 100 000 series
//! (300 000 records) once; the peaks must be the same give or take 2 MiB,
//! while the block is a hundred times larger.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::Command;

use super::synth::{write_block, Chunk};
use crate::tsdb::windows::{join, split, RecordSink, Split, DEFAULT_WINDOW_MS};

const PROBE_ENV: &str = "PROMSNAP_WINDOWS_MEMORY_PROBE";
const W: i64 = DEFAULT_WINDOW_MS;

/// Three chunks per series, one per window, of 40 to 70 bytes of data.
fn write_series_block(dir: &Path, series: usize) {
    let chunks = (0..series).map(|s| {
        (0..3)
            .map(|c| Chunk {
                min_time: c * W + (s % 1000) as i64,
                max_time: c * W + 7_000_000,
                data_len: 40 + (s * 7 + c as usize) % 31,
            })
            .collect::<Vec<_>>()
    });
    // 4 MiB segment files, so a large block has several.
    write_block(dir, chunks, 4 << 20, |_, _, r| r);
}

/// Writes each window's stream to its own file, streaming.
struct FileSink {
    dir: std::path::PathBuf,
    files: Vec<(i64, BufWriter<File>)>,
}

impl RecordSink for FileSink {
    fn record(&mut self, window: i64, bytes: &[u8]) -> io::Result<()> {
        let i = match self.files.iter().position(|(w, _)| *w == window) {
            Some(i) => i,
            None => {
                let f = File::create(self.dir.join(window.to_string()))?;
                self.files.push((window, BufWriter::new(f)));
                self.files.len() - 1
            }
        };
        self.files[i].1.write_all(bytes)
    }
}

fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Run only as a child of `peak_memory_does_not_grow_with_series`.
#[test]
#[ignore = "run by peak_memory_does_not_grow_with_series in a child process"]
fn probe() {
    let block = std::path::PathBuf::from(
        std::env::var(PROBE_ENV).expect("run by peak_memory_does_not_grow_with_series only"),
    );
    let streams = block.with_extension("streams");
    fs::create_dir_all(&streams).unwrap();
    let mut sink = FileSink {
        dir: streams.clone(),
        files: Vec::new(),
    };
    let Split::Windows(layout) = split(&block, W, &mut sink).unwrap() else {
        panic!("not in step");
    };
    for (_, f) in &mut sink.files {
        f.flush().unwrap();
    }
    drop(sink);
    let mut readers: Vec<BufReader<File>> = layout
        .windows
        .iter()
        .map(|w| BufReader::new(File::open(streams.join(w.start.to_string())).unwrap()))
        .collect();
    let out = block.with_extension("out");
    let joined = join(&block.join("index"), &layout, &mut readers, &out).unwrap();
    println!(
        "PROBE records={} bytes={} segments={} peak_kib={}",
        joined.records,
        joined.bytes,
        layout.segments.len(),
        peak_rss_kib()
    );
}

/// Runs the probe on a block of `series` series; returns its output line.
fn run_probe(series: usize) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let block = dir.path().join("block");
    write_series_block(&block, series);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tsdb::windows::tests::memory::probe"])
        .args(["--ignored", "--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, &block)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libtest prints the test's name on the same line first.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no PROBE line in {stdout}"));
    println!("{series} series: {line}");
    let field = |name: &str| -> u64 {
        let kv = line
            .split_whitespace()
            .find(|f| f.starts_with(name))
            .unwrap();
        kv[name.len() + 1..].parse().unwrap()
    };
    assert_eq!(field("records"), 3 * series as u64);
    (field("bytes"), field("peak_kib"))
}

#[test]
fn peak_memory_does_not_grow_with_series() {
    // The smaller block is large enough to fill every fixed buffer that
    // fills as it is used (the direct reads' aligned buffers are resident
    // from the start), so that only what grows with the series could tell
    // the two apart.
    let (small_bytes, small_peak) = run_probe(30_000);
    let (large_bytes, large_peak) = run_probe(300_000);
    assert!(
        large_bytes > 9 * small_bytes,
        "{small_bytes} vs {large_bytes}"
    );
    // The large block's chunk files are 52 MiB, in 900 000 records; 2 MiB
    // is 2 bytes per record, so anything kept per record or series shows.
    // (Measured: 30.1 MiB for both in a debug build.)
    assert!(
        large_peak < small_peak + 2 * 1024,
        "peak RSS {small_peak} KiB for 30k series, {large_peak} KiB for 300k"
    );
}
