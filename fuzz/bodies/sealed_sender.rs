//! Opening sealed-sender envelopes: never panics, and nothing but a sealed envelope opens.
//!
//! Input: byte 0 selects the mode. Modes 0–1 take a valid envelope (a 1:1 session message, a group
//! message) and XOR the rest of the input into it at the offset in bytes 1–2, which reaches the
//! AEADs and the content checks far more often than random bytes; any change must be refused.
//! Other modes open the rest of the input as is, with the fixed recipient.

use std::sync::OnceLock;

use hush_core::sealed_sender::{self, InnerKind};
use hush_core::{Account, DeviceIdentity, Error, UserIdentity};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Fixture {
    recipient: DeviceIdentity,
    envelopes: [Vec<u8>; 2],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5EA1);
        let user = UserIdentity::generate(&mut rng);
        let sender = Account::new(&mut rng);
        let recipient = Account::new(&mut rng);
        let to = recipient.device_keys();
        let mut seal = |kind, inner: &[u8]| {
            sealed_sender::seal(
                &mut rng,
                &user.user_key(),
                &sealed_sender::SenderState::new(1, None),
                sender.identity(),
                &to,
                kind,
                inner,
            )
            .unwrap()
        };
        let envelopes = [seal(InnerKind::Session, b"a session message"), seal(InnerKind::Group, &[0x47; 200])];
        Fixture { recipient: recipient.identity().clone(), envelopes }
    })
}

/// The target's body: one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let f = fixture();
    match (mode % 3, rest) {
        (m @ 0..=1, [hi, lo, patch @ ..]) => {
            let original = &f.envelopes[usize::from(m)];
            let mut envelope = original.clone();
            let offset = usize::from(u16::from_be_bytes([*hi, *lo])) % envelope.len().max(1);
            for (byte, x) in envelope.iter_mut().skip(offset).zip(patch) {
                *byte ^= x;
            }
            match sealed_sender::open(&f.recipient, &envelope) {
                Ok(_) => assert_eq!(&envelope, original, "a modified envelope opened"),
                Err(e) => assert!(!matches!(e, Error::Internal(_)), "internal error: {e}"),
            }
        }
        _ => {
            if let Err(e) = sealed_sender::open(&f.recipient, rest) {
                assert!(!matches!(e, Error::Internal(_)), "internal error: {e}");
            }
        }
    }
}
