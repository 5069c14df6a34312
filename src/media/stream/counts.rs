//! The stream's counters, added to the shared metrics once per visit from its own cold fields.

use std::sync::atomic::Ordering;

use super::*;
use crate::media::srtp::SrtpError;
use crate::metrics::{Reason, METRICS};

impl RtpStream {
    pub(super) fn publish_counts(&mut self) {
        let visit = std::mem::take(&mut self.visit);
        for ((error, count), total) in SrtpError::ALL
            .iter()
            .zip(visit.refused)
            .zip(&mut self.srtp_refused)
        {
            if count > 0 {
                *total += count;
                let label = Reason {
                    reason: error.as_str(),
                };
                METRICS.srtp_refused.get_or_create(&label).inc_by(count);
            }
        }
        if visit.received > 0 {
            self.counts.lost.store(self.rtcp.lost(), Ordering::Relaxed);
        }
        for (count, total, metric) in [
            (visit.sent, &self.counts.sent, &METRICS.rtp_sent),
            (visit.received, &self.counts.received, &METRICS.rtp_received),
            (visit.dropped, &self.counts.dropped, &METRICS.rtp_dropped),
        ] {
            if count > 0 {
                total.fetch_add(count, Ordering::Relaxed);
                metric.inc_by(count);
            }
        }
    }
}
