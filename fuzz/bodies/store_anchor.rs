//! The store's anchor file (docs/PROTOCOL.md §14.16): whatever bytes stand beside a store, opening
//! it is `Ok` exactly when one of the file's slots is one the store wrote (MACs are not forged
//! here), else `StoreRolledBack`; never a panic or another error; a read-only open always works.
//!
//! The first byte says how the rest makes the anchor: 0 the whole file; 1 XORed onto the store's
//! real anchor (so authentic slots are reached); 2 the real anchor cut to the second byte's length.

use std::path::PathBuf;
use std::sync::OnceLock;

use hush_core::{Error, Store, Unlock};

const HEADER_LEN: usize = 12;
const SLOT_LEN: usize = 40;
const ANCHOR_LEN: usize = HEADER_LEN + 2 * SLOT_LEN;

struct Fixture {
    store: PathBuf,
    anchor: PathBuf,
    real: Vec<u8>,
}

fn key() -> Unlock {
    Unlock::Key([0x5a; 32].into())
}

/// A store of generation 3 (so its anchor holds 2 and 3) in a directory of this process's own.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hush-fuzz-store-anchor-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = dir.join("s.db");
        let mut s = Store::create(&store, key()).unwrap();
        for i in 0..3u8 {
            let tx = s.transaction().unwrap();
            tx.put_setting("fuzz", &[i]).unwrap();
            tx.commit().unwrap();
        }
        s.close().unwrap();
        let mut anchor = store.clone().into_os_string();
        anchor.push("-anchor");
        let anchor = PathBuf::from(anchor);
        let real = std::fs::read(&anchor).unwrap();
        assert_eq!(real.len(), ANCHOR_LEN);
        Fixture { store, anchor, real }
    })
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let f = fixture();
    let anchor = match data.split_first() {
        None => f.real.clone(),
        Some((0, rest)) => rest.to_vec(),
        Some((1, rest)) => f.real.iter().enumerate().map(|(i, b)| b ^ rest.get(i).copied().unwrap_or(0)).collect(),
        Some((_, rest)) => f.real[..usize::from(rest.first().copied().unwrap_or(0)).min(ANCHOR_LEN)].to_vec(),
    };
    std::fs::write(&f.anchor, &anchor).unwrap();
    let real_slots: Vec<&[u8]> = f.real[HEADER_LEN..].chunks(SLOT_LEN).collect();
    let authentic = anchor.len() == ANCHOR_LEN
        && anchor[..HEADER_LEN] == f.real[..HEADER_LEN]
        && anchor[HEADER_LEN..].chunks(SLOT_LEN).any(|slot| real_slots.contains(&slot));
    match Store::open(&f.store, key()) {
        Ok(store) => {
            assert!(authentic, "opened beside an anchor the store never wrote: {anchor:02x?}");
            store.close().unwrap();
        }
        Err(Error::StoreRolledBack { stored: 3, .. }) => assert!(!authentic, "refused its own anchor"),
        Err(e) => panic!("{e:?}"),
    }
    std::fs::write(&f.anchor, &anchor).unwrap();
    Store::open_read_only(&f.store, key()).unwrap().close().unwrap();
}
