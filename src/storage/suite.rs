//! One behavioural test suite that every [`Storage`] backend must pass.
//!
//! The unit tests run it on the local backend; the integration tests run it
//! on a real S3 server (Garage). It is public so that those tests can reach
//! it, but compiled only for tests: with `cfg(test)` in the crate's own unit
//! tests, and with the `test-suite` feature for the integration tests (see
//! `Cargo.toml`). It uses keys under a random prefix so runs never collide.

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::{body, BadKind, BadObject, Key, NotFound, Storage};

/// Runs every check against `storage`, failing with the first broken one.
pub async fn run(storage: &dyn Storage) -> Result<()> {
    let base = format!("suite-{:08x}", rand::random::<u32>());
    let k = |s: &str| Key::new(format!("{base}/{s}")).unwrap();

    missing_objects(storage, &k("missing"))
        .await
        .context("missing objects")?;
    small_round_trip(storage, &k("small"))
        .await
        .context("small round trip")?;
    empty_object(storage, &k("empty"))
        .await
        .context("empty object")?;
    large_streamed(storage, &k("large"))
        .await
        .context("large streamed upload")?;
    limited_reads(storage, &k("large"), &k("small"))
        .await
        .context("limited reads")?;
    ranges(storage, &k("large"), &k("empty"), &k("missing"))
        .await
        .context("ranged reads")?;
    tails(storage, &k("large"), &k("empty"), &k("missing"))
        .await
        .context("tails (get_tail)")?;
    overwrite(storage, &k("small")).await.context("overwrite")?;
    unfinished_upload(storage, &k("unfinished"))
        .await
        .context("unfinished upload")?;
    listing(storage, &base).await.context("listing")?;
    deletion(storage, &base).await.context("deletion")?;
    Ok(())
}

async fn missing_objects(s: &dyn Storage, key: &Key) -> Result<()> {
    ensure!(
        s.head(key).await?.is_none(),
        "head of a missing key is Some"
    );
    let err = match s.get(key).await {
        Ok(_) => anyhow::bail!("get of a missing key succeeded"),
        Err(e) => e,
    };
    ensure!(
        err.downcast_ref::<NotFound>().is_some(),
        "not a NotFound: {err:#}"
    );
    s.delete(key).await.context("deleting a missing key")?;
    Ok(())
}

async fn small_round_trip(s: &dyn Storage, key: &Key) -> Result<()> {
    let n = s.put_bytes(key, Bytes::from_static(b"hello")).await?;
    ensure!(n == 5, "put returned {n}");
    ensure!(s.get_bytes(key, 5).await? == "hello", "content differs");
    let meta = s.head(key).await?.context("head after put is None")?;
    ensure!(meta.size == 5 && &meta.key == key, "head says {meta:?}");
    Ok(())
}

async fn empty_object(s: &dyn Storage, key: &Key) -> Result<()> {
    let (tx, rx) = body::channel(1);
    tx.finish().await?;
    ensure!(s.put(key, rx).await? == 0, "empty put size");
    ensure!(
        s.get_bytes(key, 0).await?.is_empty(),
        "empty object not empty"
    );
    ensure!(
        s.head(key).await?.map(|m| m.size) == Some(0),
        "empty head size"
    );
    Ok(())
}

/// The bytes of the large object.
fn large_data() -> Vec<u8> {
    let total: usize = 21 * 1024 * 1024 + 12345;
    (0..total).map(|i| (i * 31 % 251) as u8).collect()
}

/// Larger than one S3 multipart part, sent in uneven chunks.
async fn large_streamed(s: &dyn Storage, key: &Key) -> Result<()> {
    let data = large_data();
    let total = data.len();
    let expected = Sha256::digest(&data);
    let (tx, rx) = body::channel(2);
    let producer = async {
        for chunk in data.chunks(700 * 1024 + 3) {
            tx.send(Bytes::copy_from_slice(chunk)).await?;
        }
        tx.finish().await
    };
    let (stored, sent) = tokio::join!(s.put(key, rx), producer);
    sent?;
    ensure!(stored? == total as u64, "stored size differs");
    ensure!(
        Sha256::digest(s.get_bytes(key, total as u64).await?) == expected,
        "content differs"
    );
    ensure!(
        s.head(key).await?.map(|m| m.size) == Some(total as u64),
        "head size"
    );
    Ok(())
}

/// A read limited below the object's size stops with `BadObject` and hands
/// on no more than the limit; the large object was stored by `large_streamed`.
async fn limited_reads(s: &dyn Storage, large: &Key, small: &Key) -> Result<()> {
    use futures::StreamExt;
    let size = s.head(large).await?.context("no large object")?.size;
    let limit = size / 2;
    let mut handed_on = 0u64;
    let mut failure = None;
    match s.get_limited(large, limit).await {
        Err(e) => failure = Some(e),
        Ok(mut stream) => {
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => handed_on += c.len() as u64,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
    }
    let err = failure.context("a read limited to half the object succeeded")?;
    let bad = err.downcast_ref::<BadObject>();
    ensure!(
        bad.is_some_and(|b| b.kind == BadKind::TooLarge { limit }),
        "not a BadObject: {err:#}"
    );
    ensure!(
        handed_on <= limit,
        "{handed_on} bytes handed on past {limit}"
    );
    let err = s
        .get_bytes(small, 4)
        .await
        .err()
        .context("5 bytes read as 4")?;
    ensure!(err.downcast_ref::<BadObject>().is_some(), "{err:#}");
    ensure!(s.get_bytes(small, 6).await? == "hello", "limit above size");
    Ok(())
}

/// Reads bytes `offset..offset + length`; what was handed on before an
/// error, and the error.
async fn read_range(
    s: &dyn Storage,
    key: &Key,
    offset: u64,
    length: u64,
) -> (Vec<u8>, Option<anyhow::Error>) {
    use futures::StreamExt;
    let mut got = Vec::new();
    let mut stream = match s.get_range(key, offset, length).await {
        Ok(stream) => stream,
        Err(e) => return (got, Some(e)),
    };
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// The same range read with [`Storage::get_range_bytes`] (a local directory
/// reads it with one `pread`, other backends collect the stream): the same
/// bytes, or an error of the same kind with nothing handed on.
async fn read_range_bytes(
    s: &dyn Storage,
    key: &Key,
    offset: u64,
    length: u64,
) -> (Vec<u8>, Option<anyhow::Error>) {
    match s.get_range_bytes(key, offset, length).await {
        Ok(bytes) => (bytes.to_vec(), None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// A ranged read yields exactly the bytes asked for; one that runs past the
/// end of the object is `BadObject` (`TooShort`) and hands on no more than
/// was asked; a missing object is `NotFound`, even for no bytes. Both as a
/// stream and read into memory.
/// An object's last bytes with its size: a pack's header is read so.
async fn tails(s: &dyn Storage, large: &Key, empty: &Key, missing: &Key) -> Result<()> {
    let data = large_data();
    let size = data.len() as u64;
    for length in [1, 12, 16 << 10, size - 1, size, size + 100] {
        let (got_size, tail) = s.get_tail(large, length).await?;
        ensure!(got_size == size, "last {length} bytes: size {got_size}");
        let want = &data[data.len() - size.min(length) as usize..];
        ensure!(
            tail == want,
            "last {length} bytes: {} other bytes",
            tail.len()
        );
    }
    let (got_size, tail) = s.get_tail(empty, 16).await?;
    ensure!(
        got_size == 0 && tail.is_empty(),
        "empty object: {got_size} {}",
        tail.len()
    );
    let err = match s.get_tail(missing, 16).await {
        Ok(_) => anyhow::bail!("the tail of a missing key was read"),
        Err(e) => e,
    };
    ensure!(
        err.downcast_ref::<NotFound>().is_some(),
        "not a NotFound: {err:#}"
    );
    Ok(())
}

async fn ranges(s: &dyn Storage, large: &Key, empty: &Key, missing: &Key) -> Result<()> {
    ranges_read_by(s, large, empty, missing, false).await?;
    ranges_read_by(s, large, empty, missing, true)
        .await
        .context("read into memory (get_range_bytes)")
}

async fn ranges_read_by(
    s: &dyn Storage,
    large: &Key,
    empty: &Key,
    missing: &Key,
    into_memory: bool,
) -> Result<()> {
    let read_range = |key: &Key, offset: u64, length: u64| {
        let key = key.clone();
        async move {
            match into_memory {
                true => read_range_bytes(s, &key, offset, length).await,
                false => read_range(s, &key, offset, length).await,
            }
        }
    };
    let data = large_data();
    let size = data.len() as u64;
    let four_mib = 4 << 20;
    let inside = [
        (0, 10),
        (12345, 1),
        (four_mib - 100, 5 << 20), // across the S3 download's 4 MiB ranges
        (size - 7, 7),
        (size, 0),
        (0, size),
    ];
    for (offset, length) in inside {
        let (got, err) = read_range(large, offset, length).await;
        if let Some(e) = err {
            return Err(e.context(format!("range {offset}+{length}")));
        }
        let want = &data[offset as usize..(offset + length) as usize];
        ensure!(got == want, "range {offset}+{length}: other bytes");
    }
    let past_the_end = [
        (large, size - 5, 6),
        (large, size, 1),
        (large, size + 100, 10),
        (large, u64::MAX - 1, 5),
        (empty, 0, 1),
    ];
    for (key, offset, length) in past_the_end {
        let (got, err) = read_range(key, offset, length).await;
        let err = err.with_context(|| format!("range {offset}+{length} past the end was read"))?;
        let end = offset.saturating_add(length);
        let bad = err.downcast_ref::<BadObject>();
        ensure!(
            bad.is_some_and(|b| b.kind == BadKind::TooShort { end }),
            "range {offset}+{length}: not a BadObject: {err:#}"
        );
        ensure!(
            got.len() as u64 <= length,
            "range {offset}+{length}: {} bytes",
            got.len()
        );
    }
    let (got, err) = read_range(empty, 0, 0).await;
    ensure!(
        err.is_none() && got.is_empty(),
        "no bytes of the empty object: {err:?}"
    );
    for length in [0, 1] {
        let (_, err) = read_range(missing, 0, length).await;
        let err = err.context("a range of a missing object was read")?;
        ensure!(
            err.downcast_ref::<NotFound>().is_some(),
            "not a NotFound: {err:#}"
        );
    }
    Ok(())
}

async fn overwrite(s: &dyn Storage, key: &Key) -> Result<()> {
    s.put_bytes(key, Bytes::from_static(b"second version"))
        .await?;
    ensure!(
        s.get_bytes(key, 14).await? == "second version",
        "not replaced"
    );
    Ok(())
}

async fn unfinished_upload(s: &dyn Storage, key: &Key) -> Result<()> {
    let (tx, rx) = body::channel(4);
    tx.send(Bytes::from(vec![7u8; 1024])).await?;
    drop(tx);
    ensure!(
        s.put(key, rx).await.is_err(),
        "an unfinished body was accepted"
    );
    ensure!(
        s.head(key).await?.is_none(),
        "an unfinished body became visible"
    );
    Ok(())
}

async fn listing(s: &dyn Storage, base: &str) -> Result<()> {
    for name in ["dir/b", "dir/a", "dir/sub/c", "dirx/d"] {
        s.put_bytes(
            &Key::new(format!("{base}/{name}"))?,
            Bytes::from_static(b"x"),
        )
        .await?;
    }
    let keys = |v: Vec<super::ObjectMeta>| -> Vec<String> {
        v.into_iter()
            .map(|m| m.key.as_str()[base.len() + 1..].to_string())
            .collect()
    };
    let got = keys(s.list(&format!("{base}/dir/")).await?);
    ensure!(
        got == ["dir/a", "dir/b", "dir/sub/c"],
        "list dir/ gave {got:?}"
    );
    let got = keys(s.list(&format!("{base}/dir")).await?);
    ensure!(got.len() == 4, "list dir (no slash) gave {got:?}");
    ensure!(
        s.list(&format!("{base}/nothing/")).await?.is_empty(),
        "phantom keys"
    );
    Ok(())
}

async fn deletion(s: &dyn Storage, base: &str) -> Result<()> {
    for meta in s.list(&format!("{base}/")).await? {
        s.delete(&meta.key).await?;
    }
    let left = s.list(&format!("{base}/")).await?;
    ensure!(left.is_empty(), "objects left after delete: {left:?}");
    Ok(())
}
