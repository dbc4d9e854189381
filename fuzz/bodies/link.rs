//! Device-link parsing and completion: a scanned request of arbitrary bytes, and an arbitrary
//! approval message for a fixed request. A failed completion must leave the account unchanged.

use std::sync::OnceLock;

use hush_core::Account;
use hush_core::link::{self, LinkRequest};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn fixture() -> &'static (Account, LinkRequest) {
    static FIXTURE: OnceLock<(Account, LinkRequest)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x11);
        let account = Account::new(&mut rng);
        let request = LinkRequest::new(&mut rng, &account).unwrap();
        (account, request)
    })
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        if let Ok(request) = LinkRequest::from_bytes(rest) {
            assert_eq!(request.to_bytes(), rest);
        }
        return;
    }
    let (account, request) = fixture();
    let mut account = account.clone();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    if link::complete(&mut rng, &mut account, request, rest).is_err() {
        assert_eq!(*account.to_bytes(), *fixture().0.to_bytes());
    }
}
