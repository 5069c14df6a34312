//! What `ivr simulate` and `ivr flow test` run a conversation with: the configured prompts,
//! directory (behind its lockout) and endpoints, as the server has them, and one flow file
//! with some endpoints stood in by canned replies.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use ivr::config::endpoints::{check_flow, endpoints};
use ivr::config::{Backend, Settings};
use ivr::ivr::app::clips::ClipCache;
use ivr::ivr::console::Transcripts;
use ivr::ivr::flow::FlowEnv;
use ivr::ivr::script::steps::endpoint::Endpoint;
use ivr::ivr::script::steps::stand_in::{Canned, StandIn};
use ivr::ivr::script::Script;
use ivr::ivr::trace::Tracer;
use ivr::media::prompt::PromptLibrary;

pub struct Parts {
    pub settings: Settings,
    pub prompts: Arc<PromptLibrary>,
    pub transcripts: Transcripts,
    http: reqwest::Client,
    counters: crate::Counters,
    endpoints: HashMap<String, Endpoint>,
}

impl Parts {
    pub fn load(settings: Settings) -> Result<Parts> {
        let counters = crate::Counters::new(&settings)?;
        let prompts = Arc::new(settings.prompts.load(&settings.sip.codecs)?);
        let http = ivr::http::client()?;
        let endpoints = endpoints(&settings.endpoints)?;
        let transcripts = Transcripts::load(&settings.prompts.dir);
        Ok(Parts {
            settings,
            prompts,
            transcripts,
            http,
            counters,
            endpoints,
        })
    }

    /// `file`'s flow, its endpoints those configured, except `stand_ins` (which need not be
    /// configured): they answer with their canned replies and tell `tracer` what they got
    /// (with `offline`, every endpoint the flow names is stood in: those not given answer
    /// 503, as if down). Its
    /// directory is the configured one, or the local `users` file (with a PIN key beside it),
    /// behind a lockout of its own.
    pub fn flow_env(
        &self,
        file: &Path,
        stand_ins: &[(String, Vec<Canned>)],
        tracer: &Tracer,
        (users, offline): (Option<&Path>, bool),
    ) -> Result<Arc<FlowEnv>> {
        let mut settings = self.settings.clone();
        if let Some(users) = users {
            settings.directory.backend = Backend::Local;
            settings.directory.users = users.to_path_buf();
            settings.directory.pin_key_file = Some(users.with_extension("key"));
        }
        let counters = crate::Counters::new(&settings)?;
        let directory = crate::directory(&settings, &self.http, &counters)?;
        let script = Script::load(file, &self.prompts)?;
        let mut stand_ins = stand_ins.to_vec();
        if offline {
            let named = script.steps.values().flat_map(|step| {
                let http = step.http.as_ref().map(|h| h.endpoint.get_ref());
                http.into_iter()
                    .chain(step.remote.as_ref().map(|r| r.get_ref()))
            });
            for name in named {
                if !stand_ins.iter().any(|(given, _)| given == name) {
                    let down = Canned {
                        status: 503,
                        body: Vec::new(),
                    };
                    stand_ins.push((name.clone(), vec![down]));
                }
            }
        }
        let mut endpoints = self.endpoints.clone();
        for (name, replies) in &stand_ins {
            let mut endpoint = endpoints.remove(name).unwrap_or_else(|| {
                Endpoint::new(format!("https://{name}.stand-in.invalid/"), Vec::new())
            });
            let stand_in = StandIn::new(name, replies.clone(), Some(tracer.clone()));
            endpoint.stand_in = Some(Arc::new(stand_in));
            endpoint.name.clone_from(name);
            endpoints.insert(name.clone(), endpoint);
        }
        let name = file.display().to_string();
        check_flow(&script, &name, &endpoints)?;
        Ok(Arc::new(FlowEnv {
            script,
            name,
            directory,
            http: self.http.clone(),
            speech: self.counters.speech.clone(),
            speech_wait: Duration::from_millis(self.settings.speech.wait_ms),
            endpoints,
            clips: Arc::new(ClipCache::new(self.settings.sip.codecs.clone())),
            status: Vec::new(),
        }))
    }
}
