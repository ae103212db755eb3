//! Sets of half-open time intervals `[start, end)` in UTC milliseconds, and their algebra.

/// Sorted, disjoint, non-empty, non-touching intervals `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals {
    spans: Vec<(i64, i64)>,
}

impl Intervals {
    pub fn empty() -> Intervals {
        Intervals::default()
    }

    pub fn single(start: i64, end: i64) -> Intervals {
        Intervals::from_spans(vec![(start, end)])
    }

    /// Normalises any list of spans: empty ones dropped, overlapping or touching ones merged.
    pub fn from_spans(mut spans: Vec<(i64, i64)>) -> Intervals {
        spans.retain(|(s, e)| s < e);
        spans.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Intervals { spans: merged }
    }

    pub fn spans(&self) -> &[(i64, i64)] {
        &self.spans
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The summed length in milliseconds.
    pub fn total(&self) -> i64 {
        self.spans.iter().map(|(s, e)| e - s).sum()
    }

    pub fn union(&self, other: &Intervals) -> Intervals {
        let mut all = self.spans.clone();
        all.extend_from_slice(&other.spans);
        Intervals::from_spans(all)
    }

    pub fn intersect(&self, other: &Intervals) -> Intervals {
        let (a, b) = (&self.spans, &other.spans);
        let (mut i, mut j) = (0, 0);
        let mut out = Vec::new();
        while i < a.len() && j < b.len() {
            let start = a[i].0.max(b[j].0);
            let end = a[i].1.min(b[j].1);
            if start < end {
                out.push((start, end));
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        Intervals { spans: out }
    }

    /// What is in `self` and not in `other`.
    pub fn subtract(&self, other: &Intervals) -> Intervals {
        let mut out = Vec::new();
        let mut j = 0;
        for &(start, end) in &self.spans {
            let mut cursor = start;
            while j < other.spans.len() && other.spans[j].1 <= cursor {
                j += 1;
            }
            let mut k = j;
            while k < other.spans.len() && other.spans[k].0 < end {
                let (os, oe) = other.spans[k];
                if os > cursor {
                    out.push((cursor, os));
                }
                cursor = cursor.max(oe);
                if cursor >= end {
                    break;
                }
                k += 1;
            }
            if cursor < end {
                out.push((cursor, end));
            }
        }
        Intervals { spans: out }
    }

    /// How much of `[start, end)` the set covers, without allocating.
    pub fn overlap(&self, start: i64, end: i64) -> i64 {
        let first = self.spans.partition_point(|(_, e)| *e <= start);
        self.spans[first..]
            .iter()
            .take_while(|(s, _)| *s < end)
            .map(|(s, e)| (*e).min(end) - (*s).max(start))
            .sum()
    }

    /// Whether `t` is in the set.
    pub fn contains(&self, t: i64) -> bool {
        self.overlap(t, t + 1) == 1
    }

    /// The part inside `[from, to)`.
    pub fn clip(&self, from: i64, to: i64) -> Intervals {
        self.intersect(&Intervals::single(from, to))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn normalises_and_merges() {
        let i = Intervals::from_spans(vec![(5, 7), (1, 3), (3, 4), (6, 9), (10, 10)]);
        assert_eq!(i.spans(), &[(1, 4), (5, 9)]);
        assert_eq!(i.total(), 7);
    }

    #[test]
    fn set_operations() {
        let a = Intervals::from_spans(vec![(0, 10), (20, 30)]);
        let b = Intervals::from_spans(vec![(5, 25)]);
        assert_eq!(a.intersect(&b).spans(), &[(5, 10), (20, 25)]);
        assert_eq!(a.subtract(&b).spans(), &[(0, 5), (25, 30)]);
        assert_eq!(b.subtract(&a).spans(), &[(10, 20)]);
        assert_eq!(a.union(&b).spans(), &[(0, 30)]);
        assert_eq!(a.clip(8, 22).spans(), &[(8, 10), (20, 22)]);
        let many = Intervals::from_spans(vec![(1, 2), (3, 4), (5, 6)]);
        assert_eq!(
            Intervals::single(0, 7).subtract(&many).spans(),
            &[(0, 1), (2, 3), (4, 5), (6, 7)]
        );
    }

    fn spans() -> impl Strategy<Value = Vec<(i64, i64)>> {
        prop::collection::vec((0i64..1000, 0i64..100).prop_map(|(s, l)| (s, s + l)), 0..12)
    }

    /// Membership of a point, for checking the algebra against its definition.
    fn contains(i: &Intervals, t: i64) -> bool {
        i.spans().iter().any(|(s, e)| *s <= t && t < *e)
    }

    proptest! {
        #[test]
        fn operations_match_pointwise_logic(a in spans(), b in spans()) {
            let (a, b) = (Intervals::from_spans(a), Intervals::from_spans(b));
            let (u, n, d) = (a.union(&b), a.intersect(&b), a.subtract(&b));
            for t in (0..1100).step_by(7) {
                let (x, y) = (contains(&a, t), contains(&b, t));
                prop_assert_eq!(contains(&u, t), x || y);
                prop_assert_eq!(contains(&n, t), x && y);
                prop_assert_eq!(contains(&d, t), x && !y);
            }
            prop_assert_eq!(n.total() + d.total(), a.total());
            prop_assert_eq!(a.overlap(100, 600), a.clip(100, 600).total());
            prop_assert_eq!(u.total(), a.total() + b.total() - n.total());
        }
    }
}
