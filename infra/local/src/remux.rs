//! `sluice-local remux IN.ts OUTDIR`: the library's streaming TS → CMAF remuxer over a
//! file, for whole-process comparisons with ffmpeg and for checking outputs by hand.

use anyhow::Context;
use sluice::media::remux::{RemuxOutput, Remuxer};
use sluice::media::ts::PACKET_SIZE;
use sluice::time::Ticks;
use std::io::{Read, Write};
use std::path::Path;

/// Reads `input` 188-byte packet by packet and writes the CMAF files into `output_dir`.
pub fn run(input: &Path, output_dir: &Path, fragment_seconds: f64) -> anyhow::Result<()> {
    std::fs::create_dir_all(output_dir).with_context(|| format!("creating {}", output_dir.display()))?;
    let mut reader: Box<dyn Read> = if input == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?)
    };
    let mut remuxer = Remuxer::new(Ticks::from_secs_f64(fragment_seconds));
    // Files are written on a second thread while this one parses: the kernel's copy into
    // the page cache is as much work as the remux itself. The bounded queue keeps memory
    // at a few fragments.
    let (files, queue) = std::sync::mpsc::sync_channel::<(String, Vec<u8>, Vec<u8>)>(4);
    let folder = output_dir.to_path_buf();
    let writer = std::thread::spawn(move || -> std::io::Result<(usize, usize)> {
        let mut counts = (0usize, 0usize);
        for (name, head, data) in queue {
            counts.0 += 1;
            counts.1 += head.len() + data.len();
            let mut file = std::fs::File::create(folder.join(&name))?;
            write_both(&mut file, &head, &data)?;
        }
        Ok(counts)
    });
    let writer_stopped = std::cell::Cell::new(false);
    let mut sink = |out: RemuxOutput<'_>| {
        // Fragments are written as header + the sample bytes where they already are.
        let file = match out {
            RemuxOutput::Init { track, bytes } => (format!("{}_init.mp4", track_name(track)), bytes, Vec::new()),
            RemuxOutput::Fragment {
                track,
                sequence,
                header,
                data,
            } => (format!("{}_{sequence:05}.m4s", track_name(track)), header, data),
        };
        // A send fails only when the writer stopped on an error, which `join` reports.
        if files.send(file).is_err() {
            writer_stopped.set(true);
        }
    };
    // 1,000 packets at a time: large reads, one fragment of memory.
    let mut buffer = vec![0u8; PACKET_SIZE * 1000];
    let mut filled = 0;
    loop {
        let n = reader.read(&mut buffer[filled..]).context("reading the input")?;
        filled += n;
        let whole = filled - filled % PACKET_SIZE;
        for packet in buffer[..whole].chunks(PACKET_SIZE) {
            remuxer.push(packet, &mut sink).context("remuxing")?;
        }
        buffer.copy_within(whole..filled, 0);
        filled -= whole;
        if n == 0 || writer_stopped.get() {
            break;
        }
    }
    remuxer.finish(&mut sink).context("remuxing")?;
    drop(files);
    let counts = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))?
        .with_context(|| format!("writing into {}", output_dir.display()))?;
    eprintln!(
        "wrote {} files, {} bytes, into {}",
        counts.0,
        counts.1,
        output_dir.display()
    );
    Ok(())
}

/// Writes `head` then `tail` with as few system calls as the kernel allows (usually one).
fn write_both(file: &mut std::fs::File, mut head: &[u8], mut tail: &[u8]) -> std::io::Result<()> {
    while !head.is_empty() || !tail.is_empty() {
        let n = file.write_vectored(&[std::io::IoSlice::new(head), std::io::IoSlice::new(tail)])?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        tail = &tail[n - from_head..];
    }
    Ok(())
}

/// `video` for the video track, `audio_{id}` for audio tracks.
fn track_name(track: &sluice::media::mp4::Track) -> String {
    if track.is_video() {
        "video".into()
    } else {
        format!("audio_{}", track.id)
    }
}
