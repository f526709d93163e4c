//! A queue entry through the runner's first steps: wire JSON → `{payload, sig}` → MAC check in
//! constant time → payload parse → sealed inputs opened. The first byte chooses whether the
//! entry is taken as it is (the MAC must refuse it) or its payload is signed with the key
//! first, so the parser behind the MAC is fuzzed too. Properties: no panic; an entry not signed
//! with the key never verifies; what verifies and is signed again gives the same entry.
#![no_main]

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use outfitter_contract::envelope::{EnvelopeError, SignedJob};
use outfitter_contract::keys::{AgentCrypto, Key};
use outfitter_contract::seal;
use sha2::Sha256;

/// The contract's MAC domain (private there; a drift makes every signed run fail loudly).
const SIGNING_DOMAIN: &[u8] = b"outfitter-job-v1\n";

fn keys() -> AgentCrypto {
    AgentCrypto::from_agent_key(&Key([7; 32]))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let keys = keys();
    let job = if mode % 2 == 0 {
        match SignedJob::from_wire(text) {
            Ok(job) => job,
            Err(_) => return,
        }
    } else {
        // Sign whatever payload the fuzzer wrote, as a panel holding the key would.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&keys.signing.0).expect("any key");
        mac.update(SIGNING_DOMAIN);
        mac.update(text.as_bytes());
        SignedJob {
            payload: text.to_owned(),
            sig: hex::encode(mac.finalize().into_bytes()),
        }
    };
    match job.verify(&keys.signing) {
        Ok(env) => {
            // Signing what was parsed gives an entry that verifies to the same envelope.
            let again = env
                .sign(&keys.signing)
                .verify(&keys.signing)
                .expect("re-signed");
            assert_eq!(again, env);
            if let Some(sealed) = &env.sealed_inputs {
                let _ = seal::open(&keys.sealing, &env.job_id, sealed);
            }
        }
        Err(EnvelopeError::BadSignature) => {
            assert!(
                mode % 2 == 0,
                "the contract no longer signs like this target"
            );
        }
        Err(e) => assert!(
            mode % 2 == 1,
            "only a signed payload gets past the MAC: {e}"
        ),
    }
});
