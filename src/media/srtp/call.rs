//! Both directions of one call's SRTP, remade or rekeyed when a re-INVITE changes the keys.

use super::session::{Inbound, Outbound};
use super::SrtpKeys;

pub struct CallCrypto {
    keys: SrtpKeys,
    pub outbound: Outbound,
    pub inbound: Inbound,
}

impl CallCrypto {
    pub fn new(keys: SrtpKeys) -> CallCrypto {
        CallCrypto {
            outbound: Outbound::new(keys.suite, &keys.outbound),
            inbound: Inbound::new(keys.suite, &keys.inbound),
            keys,
        }
    }

    /// Applies renegotiated keys: a context is remade only when its own key changed, so our
    /// rollover counter and the caller's replay window carry on.
    pub fn update(crypto: &mut Option<Box<CallCrypto>>, keys: Option<&SrtpKeys>) {
        match (crypto.as_mut(), keys) {
            (_, None) => *crypto = None,
            (None, Some(keys)) => *crypto = Some(Box::new(CallCrypto::new(keys.clone()))),
            (Some(current), Some(keys)) if current.keys != *keys => {
                if (current.keys.suite, &current.keys.outbound) != (keys.suite, &keys.outbound) {
                    current.outbound = Outbound::new(keys.suite, &keys.outbound);
                }
                if (current.keys.suite, &current.keys.inbound) != (keys.suite, &keys.inbound) {
                    current.inbound.rekey(keys.suite, &keys.inbound);
                }
                current.keys = keys.clone();
            }
            (Some(_), Some(_)) => {}
        }
    }
}
