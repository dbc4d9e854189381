//! `test-vectors/pq_ratchet.json`: one full epoch of the triple ratchet (docs/PROTOCOL.md §7A) from a
//! fixed SK and a seeded RNG: epoch 0's keys, the responder's ML-KEM-768 key pair and its 38 shards,
//! the initiator's encapsulation and its 34 shards, every message's epoch and shard index until both
//! sides are in epoch 1, epoch 1's keys, and one version-2 message (header, AD, hybrid message key,
//! chunk body) carrying the first shard of epoch 2's key.

use super::*;
use crate::ratchet::pq::erasure::{CT_CODE, EK_CODE};
use crate::ratchet::pq::{Exchange, PqRatchet, chunk, keys as pq_keys};
use crate::ratchet::{RatchetState, Suite};

#[derive(Serialize, Deserialize)]
struct PqFile {
    version: u32,
    description: String,
    rng_seed: String,
    /// PQXDH's SK (fixed).
    sk: String,
    pr0: String,
    k0: String,
    /// The responder's key generation seed d || z (drawn at its first send).
    key_seed: String,
    /// pk1 = rho || SHA3-256(ek) and pk2 = t; ek = pk2 || rho.
    pk1: String,
    pk2: String,
    /// The 38 shards of pk1 || pk2 (19 data, 19 parity).
    key_shards: Vec<String>,
    /// The initiator's encapsulation randomness m (drawn at its first send after pk1 arrived).
    encapsulation_randomness: String,
    ct1: String,
    ct2: String,
    shared_secret: String,
    /// The 34 shards of ct1 || ct2 (17 data, 17 parity).
    ciphertext_shards: Vec<String>,
    pr1: String,
    k1: String,
    /// Each message of the exchange in order: sender, its epoch, the index of its shard (or none).
    messages: Vec<SentV>,
    /// A version-2 message of the initiator in epoch 1 carrying shard 0 of epoch 2's key.
    message: MessageV,
}

#[derive(Serialize, Deserialize)]
struct SentV {
    sender: String,
    epoch: u32,
    shard: Option<u8>,
}

#[derive(Serialize, Deserialize)]
struct MessageV {
    associated_data: String,
    header_key: String,
    /// 0x02 || DHs || BE32(PN) || BE32(N) || BE32(epoch).
    header_plaintext: String,
    header_nonce: String,
    encrypted_header: String,
    /// The Double Ratchet's message key MK and the epoch key it is mixed with.
    message_key: String,
    epoch_key: String,
    aead_key: String,
    aead_nonce: String,
    /// The chunk block and the plaintext, before padding.
    body: String,
    plaintext: String,
    padded_body: String,
    ciphertext: String,
    ratchet_message: String,
}

fn generate_pq_ratchet() -> PqFile {
    let rng_seed = seed_for("pq_ratchet");
    let mut rng = Recorder::new(rng_seed);
    let sk = [0x5a; 32];
    let (pr0, k0) = pq_keys::initial(&sk).unwrap();
    let mut initiator = PqRatchet::new(true, (pr0.clone(), k0.clone()));
    let mut responder = PqRatchet::new(false, (pr0.clone(), k0.clone()));
    let mut messages = Vec::new();
    let (mut key_seed, mut m) = (Vec::new(), Vec::new());
    let mut turn = 0;
    while initiator.sending_epoch < 1 || responder.sending_epoch < 1 {
        let (from, to, name) = if turn % 2 == 0 {
            (&mut responder, &mut initiator, "responder")
        } else {
            (&mut initiator, &mut responder, "initiator")
        };
        let (epoch, _, shard) = from.prepare_send(&mut rng).unwrap();
        for draw in rng.take() {
            match draw.len() {
                64 => key_seed = draw,
                32 => m = draw,
                n => panic!("unexpected draw of {n} bytes"),
            }
        }
        messages.push(SentV { sender: name.into(), epoch, shard: shard.as_ref().map(|s| s.index) });
        to.receive(epoch, shard).unwrap();
        turn += 1;
        assert!(turn < 200);
    }
    let pk = crate::crypto::kem::incremental::public_parts(&key_seed.clone().try_into().unwrap());
    let key_object = [&pk.0[..], &pk.1[..]].concat();
    let (ct1, ss, _) = crate::crypto::kem::incremental::encapsulate1(&pk.0, &m.clone().try_into().unwrap()).unwrap();
    let ct2 = crate::crypto::kem::incremental::encapsulate2(&pk.0, &m.clone().try_into().unwrap(), &pk.1).unwrap();
    let ct_object = [&ct1[..], &ct2[..]].concat();
    let shards = |code: crate::ratchet::pq::erasure::Code, object: &[u8]| -> Vec<String> {
        (0..code.total() as u8).map(|i| h(&code.shard(object, i).unwrap().data)).collect()
    };
    let (pr1, k1) = pq_keys::epoch_step(&pr0, &ss, 1).unwrap();
    assert_eq!(initiator.epoch_key(1).unwrap(), &k1);
    assert_eq!(responder.epoch_key(1).unwrap(), &k1);

    // One version-2 message of the initiator's (it sends the key of epoch 2 now).
    assert!(matches!(initiator.exchange, Exchange::Ek(_)));
    let ad: Vec<u8> = (0..128).collect();
    let their_ratchet = KeyPair::generate(&mut rng).public();
    let mut dr = RatchetState::initiator(&mut rng, &[0x33; 32], their_ratchet).unwrap();
    rng.take();
    let header_key = dr.sending_header_key.clone().unwrap();
    let mk = dr.sending_chain.as_ref().unwrap().message_key().unwrap();
    let (epoch, key, shard) = initiator.prepare_send(&mut rng).unwrap();
    assert_eq!(rng.take().concat().len(), 64);
    assert_eq!((epoch, shard.as_ref().map(|s| s.index)), (1, Some(0)));
    let plaintext = b"hush, post-quantum";
    let body = chunk::encode(shard.as_ref(), plaintext);
    let msg = dr.encrypt_with(&mut rng, &ad, &body, Suite::V2 { epoch, key: &key }).unwrap();
    assert_eq!(rng.take(), vec![msg.header_nonce.to_vec()]);
    let secrets = mk.expand_hybrid(&key).unwrap();
    let ad_v2 = [&ad[..], &[2]].concat();
    let header_plaintext = aead::open(&header_key.0, &msg.header_nonce, &ad_v2, &msg.encrypted_header).unwrap();
    let body_ad = [&ad_v2[..], &msg.header_nonce, &msg.encrypted_header].concat();
    let padded = aead::open(&secrets.key, &secrets.nonce, &body_ad, &msg.ciphertext).unwrap();
    assert_eq!(padding::unpad(padded.clone()).unwrap(), body);

    PqFile {
        version: FORMAT_VERSION,
        description: "The triple ratchet (PROTOCOL.md 7A): epoch 0 from a fixed SK, one full ML-KEM-768 exchange \
                      in erasure-coded 64-byte shards (the responder sends the key, the initiator the ciphertext), \
                      epoch 1's keys, and one version-2 message with its chunk. See README.md."
            .into(),
        rng_seed: h(&rng_seed),
        sk: h(&sk),
        pr0: h(&pr0.0),
        k0: h(&k0.0),
        key_seed: h(&key_seed),
        pk1: h(&pk.0),
        pk2: h(pk.1.as_slice()),
        key_shards: shards(EK_CODE, &key_object),
        encapsulation_randomness: h(&m),
        ct1: h(ct1.as_slice()),
        ct2: h(&ct2),
        shared_secret: h(ss.as_slice()),
        ciphertext_shards: shards(CT_CODE, &ct_object),
        pr1: h(&pr1.0),
        k1: h(&k1.0),
        messages,
        message: MessageV {
            associated_data: h(&ad),
            header_key: h(&header_key.0),
            header_plaintext: h(&header_plaintext),
            header_nonce: h(&msg.header_nonce),
            encrypted_header: h(&msg.encrypted_header),
            message_key: h(&mk.key),
            epoch_key: h(&key.0),
            aead_key: h(secrets.key.as_slice()),
            aead_nonce: h(&secrets.nonce),
            body: h(&body),
            plaintext: h(plaintext),
            padded_body: h(&padded),
            ciphertext: h(&msg.ciphertext),
            ratchet_message: h(&proto::RatchetMessage {
                version: 1,
                header_nonce: msg.header_nonce.to_vec(),
                encrypted_header: msg.encrypted_header.clone(),
                ciphertext: msg.ciphertext.clone(),
            }
            .encode_to_vec()),
        },
    }
}

#[test]
fn pq_ratchet_vectors_match() {
    check_or_write("pq_ratchet.json", &generate_pq_ratchet());
}

/// The committed values re-derived from the specification with the primitive crates only: HKDF,
/// standard (not incremental) ML-KEM-768, a Reed-Solomon code written here from §7A.4, and
/// ChaCha20-Poly1305; no hush-core code.
mod independent {
    use libcrux_ml_kem::mlkem768;

    use super::*;
    use crate::vectors::independent::{committed, hkdf, open, pad, seal};

    /// GF(2^8) with x^8 + x^4 + x^3 + x^2 + 1.
    fn mul(mut a: u8, mut b: u8) -> u8 {
        let mut out = 0u8;
        while b != 0 {
            if b & 1 == 1 {
                out ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= 0x1d;
            }
            b >>= 1;
        }
        out
    }

    fn pow(a: u8, e: usize) -> u8 {
        (0..e).fold(1, |acc, _| mul(acc, a))
    }

    fn inverse(a: u8) -> u8 {
        (1..=255u8).find(|&x| mul(a, x) == 1).unwrap()
    }

    /// G = V · (V's top k rows)^-1, V[r][c] = r^c, as §7A.4 says; then every shard of `data`.
    fn encode(data: &[u8], k: usize) -> Vec<Vec<u8>> {
        let total = 2 * k;
        let v: Vec<Vec<u8>> = (0..total).map(|r| (0..k).map(|c| pow(r as u8, c)).collect()).collect();
        // Gauss-Jordan on [top | I].
        let mut top: Vec<Vec<u8>> = v[..k].to_vec();
        let mut inv: Vec<Vec<u8>> = (0..k).map(|r| (0..k).map(|c| u8::from(r == c)).collect()).collect();
        for col in 0..k {
            let pivot = (col..k).find(|&r| top[r][col] != 0).unwrap();
            top.swap(col, pivot);
            inv.swap(col, pivot);
            let f = inverse(top[col][col]);
            for c in 0..k {
                top[col][c] = mul(top[col][c], f);
                inv[col][c] = mul(inv[col][c], f);
            }
            for r in 0..k {
                if r != col && top[r][col] != 0 {
                    let f = top[r][col];
                    for c in 0..k {
                        top[r][c] ^= mul(f, top[col][c]);
                        inv[r][c] ^= mul(f, inv[col][c]);
                    }
                }
            }
        }
        let g: Vec<Vec<u8>> = v
            .iter()
            .map(|row| (0..k).map(|c| (0..k).fold(0, |acc, i| acc ^ mul(row[i], inv[i][c]))).collect())
            .collect();
        let pieces: Vec<&[u8]> = data.chunks(64).collect();
        g.iter()
            .map(|row| (0..64).map(|j| (0..k).fold(0, |acc, c| acc ^ mul(row[c], pieces[c][j]))).collect())
            .collect()
    }

    #[test]
    fn pq_ratchet_vectors_verify_independently() {
        let f: PqFile = committed("pq_ratchet.json", generate_pq_ratchet);
        let keys0 = hkdf(&[0; 32], &unhex(&f.sk), b"hush/pqratchet/v1/init", 64);
        assert_eq!((h(&keys0[..32]), h(&keys0[32..])), (f.pr0.clone(), f.k0.clone()));

        // ML-KEM-768, standard API: ek = t || rho; pk1 = rho || H(ek), H(ek) read from dk.
        let pair = mlkem768::generate_key_pair(unhex(&f.key_seed).try_into().unwrap());
        let ek = pair.pk();
        let dk = pair.private_key().as_slice();
        let hash_ek = &dk[1152 + 1184..1152 + 1184 + 32];
        assert_eq!(f.pk1, h(&[&ek[1152..], hash_ek].concat()));
        assert_eq!(f.pk2, h(&ek[..1152]));
        let (ct, ss) = mlkem768::encapsulate(pair.public_key(), a32(&f.encapsulation_randomness));
        assert_eq!((h(&ct.as_slice()[..960]), h(&ct.as_slice()[960..])), (f.ct1.clone(), f.ct2.clone()));
        assert_eq!(h(&ss), f.shared_secret);

        // The erasure code from its definition: data shards first, then parity.
        let key_object = [unhex(&f.pk1), unhex(&f.pk2)].concat();
        assert_eq!(encode(&key_object, 19).iter().map(|s| h(s)).collect::<Vec<_>>(), f.key_shards);
        let ct_object = [unhex(&f.ct1), unhex(&f.ct2)].concat();
        assert_eq!(encode(&ct_object, 17).iter().map(|s| h(s)).collect::<Vec<_>>(), f.ciphertext_shards);

        let keys1 = hkdf(&keys0[..32], &ss, &[&b"hush/pqratchet/v1/epoch"[..], &1u32.to_be_bytes()].concat(), 64);
        assert_eq!((h(&keys1[..32]), h(&keys1[32..])), (f.pr1.clone(), f.k1.clone()));

        // §7A.7's order: the responder's key shards 0, 1, ... in epoch 0; the initiator's ciphertext
        // from its first message after pk1: ct1's 15 shards, then 15, 16, ... once pk2 was whole.
        let from = |who: &'static str| f.messages.iter().filter(move |m| m.sender == who);
        let key_indices: Vec<u8> = from("responder").filter_map(|m| m.shard).collect();
        assert_eq!(key_indices, (0..key_indices.len() as u8).collect::<Vec<_>>());
        assert!(from("responder").all(|m| (m.shard.is_some(), m.epoch) != (true, 1)));
        let ct_indices: Vec<u8> = from("initiator").filter_map(|m| m.shard).collect();
        assert!(ct_indices.len() >= 17 && ct_indices.iter().take(15).copied().eq(0..15));
        assert_eq!(f.messages.last().map(|m| m.epoch), Some(1));

        // The version-2 message.
        let m = &f.message;
        let ad_v2 = [unhex(&m.associated_data), vec![2]].concat();
        let header = open(&unhex(&m.header_key), &unhex(&m.header_nonce), &ad_v2, &unhex(&m.encrypted_header));
        assert_eq!(h(&header), m.header_plaintext);
        assert_eq!((header.len(), header[0]), (45, 2));
        assert_eq!(&header[41..], &1u32.to_be_bytes());
        assert_eq!(m.epoch_key, f.k1);
        let aead = hkdf(&unhex(&m.epoch_key), &unhex(&m.message_key), b"hush/ratchet/v2/message", 44);
        assert_eq!((h(&aead[..32]), h(&aead[32..])), (m.aead_key.clone(), m.aead_nonce.clone()));
        // The body: 0x01 || index 0 || the next key's first shard || plaintext.
        let body = unhex(&m.body);
        assert_eq!((&body[..2], &body[66..]), (&[1u8, 0][..], unhex(&m.plaintext).as_slice()));
        assert_eq!(h(&pad(&body)), m.padded_body);
        let body_ad = [&ad_v2[..], &unhex(&m.header_nonce), &unhex(&m.encrypted_header)].concat();
        let ciphertext = seal(&aead[..32], &aead[32..], &body_ad, &unhex(&m.padded_body));
        assert_eq!(h(&ciphertext), m.ciphertext);
        let rm = proto::RatchetMessage {
            version: 1,
            header_nonce: unhex(&m.header_nonce),
            encrypted_header: unhex(&m.encrypted_header),
            ciphertext,
        };
        assert_eq!(h(&rm.encode_to_vec()), m.ratchet_message);
    }
}
