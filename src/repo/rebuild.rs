//! Rebuilding one format 2 block from its recipe, into a directory.
//!
//! The recipe is read and checked first (`Repository::load_recipe`,
//! `Recipe::validate`). Then every file comes back from its blobs as a
//! stream, read from the packs with ranged reads and decoded one frame at a
//! time (`pack::BlobsReader`): the files stored whole (`meta.json`,
//! `tombstones`) and the index are copied out, never past their recorded
//! size and checked against their SHA-256; the chunk segment files are then
//! joined from the window streams by walking the restored index
//! (`tsdb::windows::join`, which checks every reference and length before
//! writing and each file's SHA-256 when it is complete), or, for a block
//! stored as files, copied out like the others.
//!
//! The directory is the caller's temporary one (`<ULID>.tmp-for-creation`):
//! a failure leaves it to be removed, and only a block rebuilt whole is
//! renamed into place. Memory: one decoder and one buffer per stream being
//! read (the window streams of a block are read side by side).

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::manifest::{BlockEntry, FileEntry};
use super::pack::PackReader;
use super::recipe::ChunkLayout;
use super::Repository;
use crate::error::{local_io, Hinted};
use crate::progress::Progress;
use crate::tsdb::windows::{self, JoinError};

/// What a rebuild read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rebuilt {
    /// Pack bytes downloaded (the blobs' stored lengths).
    pub bytes_downloaded: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

/// The hint for a block whose stored data is damaged.
const DAMAGED: &str = "the backup is damaged; `promsnap verify` checks the repository, and \
                       another snapshot may hold the block intact";

/// Rebuilds the block `entry` describes into the empty directory `dir`.
/// `durable`: fsync every file (a restore); not for scratch copies.
pub async fn rebuild(
    repo: &Repository,
    entry: &BlockEntry,
    dir: &Path,
    progress: Arc<dyn Progress>,
    durable: bool,
) -> Result<Rebuilt> {
    let recipe = repo.load_recipe(entry).await?;
    let packs = Arc::new(PackReader::new(repo.storage().clone()));
    let bytes_downloaded = recipe.stored_bytes();
    // Streams are made here, in the runtime; they are read on a blocking
    // thread, which they drive through the runtime's handle.
    let mut whole = Vec::new();
    for (path, blobs) in &recipe.small {
        let file = recipe
            .file(path)
            .context("a file without its entry")?
            .clone();
        whole.push((file, packs.stream(blobs.clone())));
    }
    let index_entry = recipe.file("index").context("no index")?.clone();
    let index = packs.stream(recipe.index.clone());
    let chunks: Vec<_> = recipe
        .chunks
        .leaves
        .iter()
        .map(|leaf| BufReader::with_capacity(64 << 10, packs.stream(leaf.blobs.clone())))
        .collect();
    let layout = match recipe.chunks.layout {
        ChunkLayout::Windows => Some(recipe.layout()?),
        ChunkLayout::Files => None,
    };
    let segment_files: Vec<FileEntry> = recipe
        .chunks
        .segments
        .iter()
        .map(|s| {
            recipe
                .file(&s.path)
                .cloned()
                .context("a segment without its entry")
        })
        .collect::<Result<_>>()?;
    let dir = dir.to_path_buf();
    let ulid = entry.ulid.clone();
    let written = tokio::task::spawn_blocking(move || -> Result<u64> {
        let mut written = 0;
        for (file, stream) in whole {
            written += write_checked(&dir, &file, stream, &*progress, durable)?;
        }
        written += write_checked(&dir, &index_entry, index, &*progress, durable)?;
        let mut chunks = chunks;
        match layout {
            Some(layout) => {
                let mut counted: Vec<_> = chunks
                    .iter_mut()
                    .map(|r| BufReader::with_capacity(0, Counting(r, &*progress)))
                    .collect();
                let joined = windows::join(&dir.join("index"), &layout, &mut counted, &dir)
                    .map_err(|e| join_error(e, &ulid))?;
                written += joined.bytes;
                if durable {
                    for s in &layout.segments {
                        let path = dir.join(&s.path);
                        File::open(&path).and_then(|f| f.sync_all()).map_err(|e| {
                            local_io(e, format!("could not sync {}", path.display()))
                        })?;
                    }
                }
            }
            None => {
                fs::create_dir(dir.join("chunks")).map_err(|e| {
                    local_io(e, format!("could not create {}/chunks", dir.display()))
                })?;
                for (file, stream) in segment_files.iter().zip(chunks) {
                    written += write_checked(&dir, file, stream, &*progress, durable)?;
                }
            }
        }
        Ok(written)
    })
    .await
    .context("the rebuilding thread failed")?
    .with_context(|| format!("could not rebuild block {}", entry.ulid))?;
    Ok(Rebuilt {
        bytes_downloaded,
        bytes_written: written,
    })
}

/// A join error: damage in the backup, this machine's disk, or the
/// connection to the repository.
fn join_error(e: JoinError, ulid: &str) -> anyhow::Error {
    match e {
        JoinError::Write { path, source } => {
            local_io(source, format!("could not write {}", path.display()))
        }
        JoinError::StreamRead { source, .. } if !is_damage(&source) => {
            anyhow::Error::new(source).context(format!("reading the data of block {ulid}"))
        }
        other => anyhow::Error::new(other).context(Hinted::failure(
            format!("the stored data of block {ulid} does not rebuild it"),
            DAMAGED,
        )),
    }
}

/// Whether a read failure of stored data is damage (a bad blob or pack),
/// not a failure to read.
fn is_damage(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
        || super::blob::BlobError::of_io(e).is_some()
        || e.get_ref()
            .is_some_and(|inner| inner.downcast_ref::<super::pack::DamagedPack>().is_some())
}

/// Copies `data` into `dir/<file.path>`, never more than its recorded
/// size, and checks its length and SHA-256; returns the bytes written.
fn write_checked(
    dir: &Path,
    file: &FileEntry,
    mut data: impl Read,
    progress: &dyn Progress,
    durable: bool,
) -> Result<u64> {
    let path = dir.join(&file.path);
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| local_io(e, format!("could not create {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut size: u64 = 0;
    loop {
        let n = data.read(&mut buf).map_err(|e| read_error(e, file))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > file.size {
            return Err(Hinted::failure(
                format!(
                    "{} comes back longer than its {} bytes",
                    file.path, file.size
                ),
                DAMAGED,
            )
            .into());
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| local_io(e, format!("could not write {}", path.display())))?;
        progress.advance(n as u64);
    }
    let sha = hex::encode(hasher.finalize());
    if size != file.size || sha != file.sha256 {
        return Err(Hinted::failure(
            format!(
                "{} comes back as {size} bytes with SHA-256 {sha}, not {} bytes with {}",
                file.path, file.size, file.sha256
            ),
            DAMAGED,
        )
        .into());
    }
    if durable {
        out.sync_all()
            .map_err(|e| local_io(e, format!("could not sync {}", path.display())))?;
    }
    Ok(size)
}

/// A read failure of stored data: damage when a blob or pack is bad, else
/// the connection.
fn read_error(e: io::Error, file: &FileEntry) -> anyhow::Error {
    let damaged = is_damage(&e);
    let err = anyhow::Error::new(e);
    match damaged {
        true => err.context(Hinted::failure(
            format!("the stored data of {} is damaged", file.path),
            DAMAGED,
        )),
        false => err.context(format!("reading the stored data of {}", file.path)),
    }
}

/// Reports the bytes read through it as progress.
struct Counting<'a, R>(R, &'a dyn Progress);

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.advance(n as u64);
        Ok(n)
    }
}
