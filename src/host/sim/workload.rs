//! A closed-loop web workload served by processor sharing.
//!
//! Each of N clients thinks for an exponentially distributed time, sends one
//! request, waits for the answer, and thinks again (JMeter's thread groups
//! in the paper). The VM serves its outstanding requests by processor
//! sharing: every outstanding request gets an equal part of the CPU the VM
//! is given, each at most one vCPU's worth.
//!
//! Processor sharing is kept in "attained service" form: every outstanding
//! request has received the same service since it arrived, so a request is
//! stored once with the attained level at which it finishes, and a step only
//! raises one shared level. A step costs O(completions × log n), never
//! O(clients).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

use super::rng::Rng;

const NS_PER_MS: f64 = 1e6;

/// The least CPU an outstanding request is taken to need, ms.
const MIN_WORK_MS: f64 = 1e-9;

/// How long the published response time looks back.
const RECENT_WINDOW_NS: u64 = 1_000_000_000;

/// An outstanding request: finishes when the shared attained level reaches
/// `finish_ms`.
#[derive(Debug, Clone, Copy)]
struct Request {
    finish_ms: f64,
    arrived_ns: u64,
}

impl PartialEq for Request {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Request {}
impl PartialOrd for Request {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Request {
    fn cmp(&self, other: &Self) -> Ordering {
        self.finish_ms
            .total_cmp(&other.finish_ms)
            .then(self.arrived_ns.cmp(&other.arrived_ns))
    }
}

/// A finished request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Completion {
    pub at_ns: u64,
    pub response_ms: f64,
}

/// One VM's clients and the requests it is serving.
#[derive(Debug)]
pub(super) struct Workload {
    think_ms: f64,
    demand_ms: f64,
    rng: Rng,
    /// Wake-up times of the clients that are thinking.
    thinking: BinaryHeap<Reverse<u64>>,
    outstanding: BinaryHeap<Reverse<Request>>,
    /// Service every outstanding request has attained (shared level), ms.
    attained_ms: f64,
    /// Σ finish_ms over outstanding requests, for the remaining work in O(1).
    finish_sum_ms: f64,
    /// Clients to drop when their current request completes (client count
    /// lowered while they were waiting).
    to_retire: u32,
    /// Completions of the last second, for the published mean.
    recent: VecDeque<Completion>,
    recent_sum_ms: f64,
}

impl Workload {
    pub(super) fn new(clients: u32, think_ms: f64, demand_ms: f64, rng: Rng, now_ns: u64) -> Self {
        let mut workload = Self {
            think_ms,
            demand_ms,
            rng,
            thinking: BinaryHeap::new(),
            outstanding: BinaryHeap::new(),
            attained_ms: 0.0,
            finish_sum_ms: 0.0,
            to_retire: 0,
            recent: VecDeque::new(),
            recent_sum_ms: 0.0,
        };
        workload.set_clients(clients, now_ns);
        workload
    }

    /// Clients currently in the loop (not counting those about to retire).
    pub(super) fn clients(&self) -> u32 {
        let total = self.thinking.len() + self.outstanding.len();
        u32::try_from(total).unwrap_or(u32::MAX) - self.to_retire
    }

    pub(super) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Changes the number of clients. New clients start thinking at
    /// `now_ns`; removed ones are taken from the thinkers first, then from
    /// those waiting, who leave once answered.
    pub(super) fn set_clients(&mut self, clients: u32, now_ns: u64) {
        let mut current = self.clients();
        while current < clients && self.to_retire > 0 {
            self.to_retire -= 1;
            current += 1;
        }
        while current < clients {
            let wake = now_ns + self.think_ns();
            self.thinking.push(Reverse(wake));
            current += 1;
        }
        while current > clients && self.thinking.pop().is_some() {
            current -= 1;
        }
        self.to_retire += current - clients.min(current);
    }

    fn think_ns(&mut self) -> u64 {
        (self.rng.exponential(self.think_ms) * NS_PER_MS) as u64
    }

    /// Turns every client whose think time ended by `now_ns` into a request
    /// needing `demand_ms × slowdown` of CPU.
    pub(super) fn admit(&mut self, now_ns: u64, slowdown: f64) {
        let work_ms = self.demand_ms * slowdown;
        while let Some(&Reverse(wake)) = self.thinking.peek() {
            if wake > now_ns {
                break;
            }
            self.thinking.pop();
            let finish_ms = self.attained_ms + work_ms;
            self.finish_sum_ms += finish_ms;
            self.outstanding.push(Reverse(Request {
                finish_ms,
                arrived_ns: wake,
            }));
        }
    }

    /// CPU the VM could use this step (ms): one vCPU per request, at most
    /// `vcpus`, and no more than the work left.
    pub(super) fn wanted_ms(&self, vcpus: u32, step_ms: f64) -> f64 {
        let n = self.outstanding.len();
        if n == 0 {
            return 0.0;
        }
        // Rounding can leave a request a hair short of its finish level (or
        // the sum below zero); it still needs a sliver of CPU to complete,
        // else it would wait for the next arrival to be served.
        let remaining = (self.finish_sum_ms - n as f64 * self.attained_ms).max(MIN_WORK_MS);
        self.parallel_ms(vcpus, step_ms).min(remaining)
    }

    /// CPU the VM could use this step if no request ran out of work.
    pub(super) fn parallel_ms(&self, vcpus: u32, step_ms: f64) -> f64 {
        self.outstanding.len().min(vcpus as usize) as f64 * step_ms
    }

    /// Serves outstanding requests with `given_ms` of CPU over the step
    /// starting at `start_ns`, pushing completions. The VM runs at
    /// `speed_ms` of CPU per step (≥ `given_ms`; more when it finishes its
    /// work early), which places completions within the step. Returns the
    /// CPU used.
    pub(super) fn serve(
        &mut self,
        start_ns: u64,
        step_ns: u64,
        given_ms: f64,
        speed_ms: f64,
        vcpus: u32,
        completions: &mut Vec<Completion>,
    ) -> f64 {
        let n = self.outstanding.len();
        if n == 0 || given_ms <= 0.0 {
            return 0.0;
        }
        let step_ms = step_ns as f64 / NS_PER_MS;
        // No request runs on more than one vCPU at a time.
        let per_request_max = step_ms * (vcpus as f64 / n as f64).min(1.0);
        let level_cap = self.attained_ms + per_request_max;
        let mut budget = given_ms;
        let mut used = 0.0;
        while let Some(&Reverse(next)) = self.outstanding.peek() {
            let k = self.outstanding.len() as f64;
            let target = next.finish_ms.min(level_cap);
            let need = (target - self.attained_ms).max(0.0) * k;
            if need > budget {
                self.attained_ms += budget / k;
                used += budget;
                break;
            }
            budget -= need;
            used += need;
            self.attained_ms = target;
            if next.finish_ms > level_cap {
                break;
            }
            self.outstanding.pop();
            self.finish_sum_ms -= next.finish_ms;
            let fraction = (used / speed_ms.max(given_ms)).min(1.0);
            let at_ns = start_ns + (step_ns as f64 * fraction).round() as u64;
            self.complete(next, at_ns, completions);
        }
        if self.outstanding.is_empty() {
            // Restart the shared level so rounding never accumulates.
            self.attained_ms = 0.0;
            self.finish_sum_ms = 0.0;
        }
        used
    }

    fn complete(&mut self, request: Request, at_ns: u64, completions: &mut Vec<Completion>) {
        let done = Completion {
            at_ns,
            response_ms: at_ns.saturating_sub(request.arrived_ns) as f64 / NS_PER_MS,
        };
        completions.push(done);
        self.recent.push_back(done);
        self.recent_sum_ms += done.response_ms;
        if self.to_retire > 0 {
            self.to_retire -= 1;
        } else {
            let wake = at_ns + self.think_ns();
            self.thinking.push(Reverse(wake));
        }
    }

    /// Forgets completions older than one second before `now_ns`.
    pub(super) fn prune_recent(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(RECENT_WINDOW_NS);
        while let Some(oldest) = self.recent.front() {
            if oldest.at_ns >= horizon {
                break;
            }
            self.recent_sum_ms -= oldest.response_ms;
            self.recent.pop_front();
        }
        if self.recent.is_empty() {
            self.recent_sum_ms = 0.0;
        }
    }

    /// Mean response time of the requests completed in the last second.
    pub(super) fn recent_mean_ms(&self) -> Option<f64> {
        (!self.recent.is_empty()).then(|| (self.recent_sum_ms / self.recent.len() as f64).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP_NS: u64 = 10_000_000;

    fn run(workload: &mut Workload, steps: u64, cpu_ms_per_step: f64) -> Vec<Completion> {
        let mut done = Vec::new();
        for i in 0..steps {
            let t = i * STEP_NS;
            workload.admit(t, 1.0);
            let given = workload.wanted_ms(1, 10.0).min(cpu_ms_per_step);
            let speed = workload.parallel_ms(1, 10.0).min(cpu_ms_per_step);
            workload.serve(t, STEP_NS, given, speed, 1, &mut done);
        }
        done
    }

    #[test]
    fn a_lone_request_takes_its_demand_at_full_speed() {
        // think 0: the request arrives at once; 25 ms of work on a free vCPU.
        let mut w = Workload::new(1, 0.0, 25.0, Rng::new(1), 0);
        let done = run(&mut w, 3, 10.0);
        assert_eq!(done.len(), 1);
        assert!((done[0].response_ms - 25.0).abs() < 1e-6, "{done:?}");
    }

    #[test]
    fn a_request_left_a_rounding_error_short_completes_at_once() {
        // At a 19% cap a 9.5 ms request gets 1.9 ms a step; five steps add
        // up to a hair under 9.5 in floating point. It must complete in the
        // sixth step, not wait for the next request to arrive.
        let mut w = Workload::new(1, 0.0, 9.5, Rng::new(1), 0);
        let done = run(&mut w, 7, 1.9);
        assert!(!done.is_empty(), "the request never completed");
        assert!(done[0].response_ms <= 60.0, "{done:?}");
    }

    #[test]
    fn processor_sharing_finishes_equal_requests_together() {
        // Two 10 ms requests on one vCPU: both finish at 20 ms.
        let mut w = Workload::new(2, 0.0, 10.0, Rng::new(1), 0);
        let done = run(&mut w, 2, 10.0);
        assert_eq!(done.len(), 2);
        for d in &done {
            assert!((d.response_ms - 20.0).abs() < 1e-6, "{done:?}");
        }
    }

    #[test]
    fn lowering_clients_retires_waiting_ones_after_their_answer() {
        let mut w = Workload::new(4, 0.0, 50.0, Rng::new(1), 0);
        w.admit(0, 1.0);
        assert_eq!(w.outstanding(), 4);
        w.set_clients(1, 0);
        assert_eq!(w.clients(), 1);
        let done = run(&mut w, 30, 10.0);
        assert!(done.len() >= 4);
        assert!(w.outstanding() + w.thinking.len() == 1);
        w.set_clients(3, 0);
        assert_eq!(w.clients(), 3);
    }

    #[test]
    fn recent_mean_covers_only_the_last_second() {
        let mut w = Workload::new(1, 0.0, 5.0, Rng::new(1), 0);
        run(&mut w, 10, 10.0);
        assert!(w.recent_mean_ms().is_some());
        w.set_clients(0, 100 * STEP_NS);
        run(&mut w, 1, 10.0);
        w.prune_recent(10 * 1_000_000_000);
        assert_eq!(w.recent_mean_ms(), None);
    }
}
