use sled::Transactional;
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value_len: usize = args[1].parse().unwrap();
    let events_each: usize = args.get(4).map_or(1, |a| a.parse().unwrap());
    let per_block: usize = args[2].parse().unwrap();
    let blocks: usize = args[3].parse().unwrap();
    let dir = std::env::temp_dir().join(format!("scratch-sled-{value_len}-{per_block}"));
    let _ = std::fs::remove_dir_all(&dir);
    let db = sled::Config::new().path(&dir).open().unwrap();
    let a = db.open_tree("a").unwrap();
    let b = db.open_tree("b").unwrap();
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let value = vec![7u8; value_len];
    let mut total = std::time::Duration::ZERO;
    for blk in 0..blocks {
        let keys: Vec<[u8; 32]> = (0..per_block)
            .map(|_| {
                let mut k = [0u8; 32];
                for c in k.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    c.copy_from_slice(&x.to_le_bytes());
                }
                k
            })
            .collect();
        let t = Instant::now();
        (&a, &b)
            .transaction(|(a, _b)| {
                for k in &keys {
                    a.insert(&k[..], value.as_slice())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .unwrap();
        db.flush().unwrap();
        let e = t.elapsed();
        if blk >= blocks / 2 {
            total += e;
        }
    }
    let n = (blocks - blocks / 2) * per_block * events_each;
    println!(
        "value {value_len} B: {:.2} us per event (second half, tree {} entries)",
        total.as_secs_f64() * 1e6 / n as f64,
        a.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
