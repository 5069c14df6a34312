//! The stream's counters: the call's own after every visit, the shared metrics' through its
//! pacer thread, once a second.

use std::sync::atomic::Ordering;

use super::*;
use crate::media::srtp::SrtpError;
use crate::metrics::{Reason, METRICS};

impl RtpStream {
    /// Ends a visit's counting: the call's counts now, the metrics' (in `unpublished`) when
    /// the pacer publishes them.
    pub(super) fn publish_counts(&mut self, unpublished: &mut Visit) {
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
        // The call's own counts (its record reads them), then the thread's for the metrics.
        for (count, total) in [
            (visit.sent, &self.counts.sent),
            (visit.received, &self.counts.received),
            (visit.dropped, &self.counts.dropped),
        ] {
            if count > 0 {
                total.fetch_add(count, Ordering::Relaxed);
            }
        }
        unpublished.sent += visit.sent;
        unpublished.received += visit.received;
        unpublished.dropped += visit.dropped;
    }
}

impl Visit {
    /// Adds what is counted here to the shared metrics, and starts again from 0.
    pub(crate) fn publish(&mut self) {
        let counted = std::mem::take(self);
        for (count, metric) in [
            (counted.sent, &METRICS.rtp_sent),
            (counted.received, &METRICS.rtp_received),
            (counted.dropped, &METRICS.rtp_dropped),
        ] {
            if count > 0 {
                metric.inc_by(count);
            }
        }
    }
}
