//! Session keys from a master key (RFC 3711 §4.3) and the AES counter-mode keystream they use
//! (§4.1.1). The key derivation rate is 0: one set of session keys for the master key's life.

use aes::cipher::{BlockEncrypt, InnerIvInit, KeyInit, StreamCipher};
use aes::Aes128;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::keys::{MasterKey, MASTER_SALT_LEN};

pub(super) type HmacSha1 = Hmac<Sha1>;

const AUTH_KEY_LEN: usize = 20;

#[derive(Clone, Copy)]
pub(super) enum Labels {
    Rtp,
    Rtcp,
}

impl Labels {
    /// The labels for the cipher key, the authentication key and the salt.
    fn values(self) -> [u8; 3] {
        match self {
            Labels::Rtp => [0, 1, 2],
            Labels::Rtcp => [3, 4, 5],
        }
    }
}

/// What one direction of SRTP or SRTCP needs per packet, expanded once.
#[derive(Clone)]
pub(super) struct SessionKeys {
    cipher: Aes128,
    salt: [u8; MASTER_SALT_LEN],
    mac: HmacSha1,
}

impl SessionKeys {
    pub(super) fn derive(master: &MasterKey, labels: Labels) -> SessionKeys {
        let prf = Aes128::new(master.key().into());
        let [cipher_label, auth_label, salt_label] = labels.values();
        let mut cipher_key = [0u8; 16];
        let mut auth_key = [0u8; AUTH_KEY_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        derive_into(&prf, master.salt(), cipher_label, &mut cipher_key);
        derive_into(&prf, master.salt(), auth_label, &mut auth_key);
        derive_into(&prf, master.salt(), salt_label, &mut salt);
        let keys = SessionKeys {
            cipher: Aes128::new(&cipher_key.into()),
            salt,
            mac: <HmacSha1 as Mac>::new_from_slice(&auth_key).expect("HMAC takes any key length"),
        };
        zeroize::Zeroize::zeroize(&mut cipher_key);
        zeroize::Zeroize::zeroize(&mut auth_key);
        keys
    }

    /// XORs the keystream for (`ssrc`, `index`) into `data` (RFC 3711 §4.1.1).
    pub(super) fn apply_keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let core = ctr::CtrCore::<Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
            self.cipher.clone(),
            &iv.into(),
        );
        let mut ctr = ctr::cipher::StreamCipherCoreWrapper::from_core(core);
        ctr.apply_keystream(data);
    }

    /// The full HMAC-SHA1 of `parts`, to be truncated to the suite's tag.
    pub(super) fn tag(&self, parts: [&[u8]; 2]) -> [u8; AUTH_KEY_LEN] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The AES-CM PRF: `out` is the keystream under the master key at
/// IV = (master salt XOR label·2^48)·2^16.
fn derive_into(prf: &Aes128, master_salt: &[u8; MASTER_SALT_LEN], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(master_salt);
    iv[7] ^= label;
    for (counter, chunk) in out.chunks_mut(16).enumerate() {
        let mut block = iv;
        block[14..].copy_from_slice(&(counter as u16).to_be_bytes());
        let mut block = block.into();
        prf.encrypt_block(&mut block);
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

#[cfg(test)]
pub(super) fn derive_for_test(master: &MasterKey, label: u8, out: &mut [u8]) {
    derive_into(&Aes128::new(master.key().into()), master.salt(), label, out);
}
