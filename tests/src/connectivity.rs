//! Who could talk to whom, and when: the record the checker holds commits against.

/// The network at one moment: which nodes run unpaused, and which consensus messages can
/// pass (directly; relays through third nodes are accounted for by [`Connectivity::has_quorum`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connectivity {
    /// Running and not paused.
    pub up: Vec<bool>,
    /// `can_send[a][b]`: bytes from `a` reach `b` on the consensus network.
    pub can_send: Vec<Vec<bool>>,
    /// Which nodes are validators (the others are full nodes, which still relay).
    pub validators: Vec<bool>,
}

impl Connectivity {
    /// Votes needed to decide: more than two thirds of the validators (equal powers).
    pub fn quorum(&self) -> usize {
        let n = self.validators.iter().filter(|v| **v).count();
        n - (n - 1) / 3
    }

    /// Whether some set of at least [`Connectivity::quorum`] validators that are up can all
    /// reach one another, directly or through other nodes that are up (gossip relays
    /// consensus messages). Without that, no honest majority can decide a block.
    pub fn has_quorum(&self) -> bool {
        let count = self.up.len();
        // reach[a][b]: a message from a can get to b through nodes that are up.
        let mut reach: Vec<Vec<bool>> = (0..count)
            .map(|a| {
                (0..count)
                    .map(|b| self.up[a] && self.up[b] && self.can_send[a][b])
                    .collect()
            })
            .collect();
        for k in 0..count {
            for a in 0..count {
                for b in 0..count {
                    if reach[a][k] && reach[k][b] {
                        reach[a][b] = true;
                    }
                }
            }
        }
        // The strongly connected component of each validator, counted in validators.
        (0..count)
            .filter(|a| self.validators[*a] && self.up[*a])
            .any(|a| {
                let together = (0..count)
                    .filter(|b| self.validators[*b] && reach[a][*b] && reach[*b][a])
                    .count();
                together >= self.quorum()
            })
    }
}

/// Every change of connectivity, with its Unix time in ms, in order.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    changes: Vec<(u64, Connectivity)>,
}

impl Timeline {
    /// Appends a change.
    pub fn push(&mut self, at_ms: u64, state: Connectivity) {
        self.changes.push((at_ms, state));
    }

    /// The changes.
    pub fn changes(&self) -> &[(u64, Connectivity)] {
        &self.changes
    }

    /// Whether the network had a quorum at some moment of `[from_ms, to_ms]`.
    pub fn quorum_during(&self, from_ms: u64, to_ms: u64) -> bool {
        // The state in force at `from_ms` is the last change at or before it.
        let first = self
            .changes
            .iter()
            .rposition(|(at, _)| *at <= from_ms)
            .unwrap_or(0);
        self.changes[first..]
            .iter()
            .take_while(|(at, _)| *at <= to_ms)
            .any(|(_, state)| state.has_quorum())
    }

    /// Milliseconds without a quorum in all.
    pub fn no_quorum_ms(&self, end_ms: u64) -> u64 {
        let mut total = 0;
        for (k, (at, state)) in self.changes.iter().enumerate() {
            let until = self.changes.get(k + 1).map_or(end_ms, |(next, _)| *next);
            if !state.has_quorum() {
                total += until.saturating_sub(*at);
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn four(up: [bool; 4]) -> Connectivity {
        Connectivity {
            up: up.to_vec(),
            can_send: vec![vec![true; 4]; 4],
            validators: vec![true; 4],
        }
    }

    fn cut(state: &mut Connectivity, a: usize, b: usize) {
        state.can_send[a][b] = false;
        state.can_send[b][a] = false;
    }

    #[test]
    fn three_of_four_decide_two_do_not() {
        assert_eq!(four([true; 4]).quorum(), 3);
        assert!(four([true, true, true, false]).has_quorum());
        assert!(!four([true, true, false, false]).has_quorum());
        let mut split = four([true; 4]);
        for a in [0, 1] {
            for b in [2, 3] {
                cut(&mut split, a, b);
            }
        }
        assert!(!split.has_quorum(), "a 2|2 split decided");
    }

    #[test]
    fn relays_count_and_one_way_links_do_not_connect() {
        let mut line = four([true; 4]);
        // 0 and 2 cannot talk directly, but both reach 1: gossip relays through it.
        cut(&mut line, 0, 2);
        assert!(line.has_quorum());
        // 3 can only send: it never hears the others, so it cannot take part; 0, 1 and 2
        // still can, and without 2 nobody can.
        let mut deaf = four([true; 4]);
        for a in 0..3 {
            deaf.can_send[a][3] = false;
        }
        assert!(deaf.has_quorum());
        deaf.up[2] = false;
        assert!(!deaf.has_quorum(), "0 and 1 decided with a deaf 3");
    }

    #[test]
    fn the_timeline_answers_for_an_interval() {
        let mut timeline = Timeline::default();
        timeline.push(0, four([true; 4]));
        timeline.push(100, four([true, true, false, false]));
        timeline.push(200, four([true; 4]));
        assert!(timeline.quorum_during(50, 150));
        assert!(!timeline.quorum_during(120, 180));
        assert!(timeline.quorum_during(150, 250));
        assert_eq!(timeline.no_quorum_ms(300), 100);
    }
}
