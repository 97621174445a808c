//! Task dependency graph: path finding, cycle detection and the
//! deterministic breaking of cycles that merges can create.
//!
//! An edge `a -> b` means "task `a` depends on task `b`" (`b` is in `a.deps`).
//! Locally the model refuses an edge that would close a cycle, but two people
//! can each add one edge concurrently and the merged document then holds a
//! cycle. Views never present a cycle as valid: [`break_cycles`] drops, in
//! every cycle, the edge with the greatest `(from, to)` pair, which depends
//! only on the merged state, so every peer makes the same choice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Adjacency: task id -> ids it depends on.
pub type Edges = BTreeMap<String, BTreeSet<String>>;

/// A path of dependencies from `from` to `to` (both included), if any.
pub fn find_path(edges: &Edges, from: &str, to: &str) -> Option<Vec<String>> {
    // Breadth-first search, remembering parents, so the path is short.
    let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    queue.push_back(from);
    seen.insert(from);
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n.to_string()];
            let mut cur = n;
            while let Some(p) = parent.get(cur) {
                path.push((*p).to_string());
                cur = p;
            }
            path.reverse();
            return Some(path);
        }
        if let Some(next) = edges.get(n) {
            for m in next {
                if seen.insert(m.as_str()) {
                    parent.insert(m.as_str(), n);
                    queue.push_back(m.as_str());
                }
            }
        }
    }
    None
}

/// If adding `from -> to` would close a cycle, the cycle as a path
/// `from -> to -> ... -> from`.
pub fn cycle_if_added(edges: &Edges, from: &str, to: &str) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![from.to_string(), to.to_string()]);
    }
    let mut path = find_path(edges, to, from)?;
    path.insert(0, from.to_string());
    Some(path)
}

/// Find one cycle, deterministically (depth-first from the smallest id).
/// Returns the nodes of the cycle in order, first node not repeated.
pub fn find_cycle(edges: &Edges) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        Grey,
        Black,
    }
    let empty = BTreeSet::new();
    let mut color: BTreeMap<&str, Color> = BTreeMap::new();
    for start in edges.keys() {
        if color.contains_key(start.as_str()) {
            continue;
        }
        // Iterative DFS: stack of (node, iterator over its successors).
        let mut stack: Vec<(&str, std::collections::btree_set::Iter<'_, String>)> = Vec::new();
        color.insert(start, Color::Grey);
        stack.push((start, edges.get(start).unwrap_or(&empty).iter()));
        while let Some((node, iter)) = stack.last_mut() {
            let node = *node;
            match iter.next() {
                Some(next) => match color.get(next.as_str()) {
                    Some(Color::Grey) => {
                        let pos = stack.iter().position(|(n, _)| *n == next.as_str())?;
                        return Some(stack[pos..].iter().map(|(n, _)| (*n).to_string()).collect());
                    }
                    Some(Color::Black) => {}
                    None => {
                        color.insert(next, Color::Grey);
                        let succ = edges.get(next.as_str()).map(|s| s.iter());
                        stack.push((next, succ.unwrap_or_else(|| empty_iter(&empty))));
                    }
                },
                None => {
                    color.insert(node, Color::Black);
                    stack.pop();
                }
            }
        }
    }
    None
}

fn empty_iter(e: &BTreeSet<String>) -> std::collections::btree_set::Iter<'_, String> {
    e.iter()
}

/// A dependency ignored to break a cycle found in a merged plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleBreak {
    /// The tasks forming the cycle, in dependency order.
    pub cycle: Vec<String>,
    /// The ignored edge: `from` depends on `to`.
    pub from: String,
    /// See `from`.
    pub to: String,
}

/// Remove edges until no cycle remains. In each cycle found the edge with the
/// greatest `(from, to)` pair is dropped. Returns what was dropped.
pub fn break_cycles(edges: &mut Edges) -> Vec<CycleBreak> {
    let mut breaks = Vec::new();
    // Each round removes one edge, so this terminates.
    while let Some(cycle) = find_cycle(edges) {
        let n = cycle.len();
        let mut worst: Option<(String, String)> = None;
        for i in 0..n {
            let e = (cycle[i].clone(), cycle[(i + 1) % n].clone());
            if worst.as_ref().is_none_or(|w| e > *w) {
                worst = Some(e);
            }
        }
        let Some((from, to)) = worst else { break };
        if let Some(set) = edges.get_mut(&from) {
            set.remove(&to);
        }
        breaks.push(CycleBreak { cycle, from, to });
    }
    breaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(pairs: &[(&str, &str)]) -> Edges {
        let mut e = Edges::new();
        for (a, b) in pairs {
            e.entry(a.to_string()).or_default().insert(b.to_string());
        }
        e
    }

    #[test]
    fn paths_and_cycles() {
        let e = g(&[("a", "b"), ("b", "c")]);
        assert_eq!(find_path(&e, "a", "c").unwrap(), vec!["a", "b", "c"]);
        assert!(find_path(&e, "c", "a").is_none());
        assert_eq!(
            cycle_if_added(&e, "c", "a").unwrap(),
            vec!["c", "a", "b", "c"]
        );
        assert!(cycle_if_added(&e, "a", "c").is_none());
        assert!(find_cycle(&e).is_none());
    }

    #[test]
    fn breaks_cycles_deterministically() {
        let mut e = g(&[
            ("a", "b"),
            ("b", "a"),
            ("c", "d"),
            ("d", "e"),
            ("e", "c"),
            ("x", "a"),
        ]);
        let breaks = break_cycles(&mut e);
        assert_eq!(breaks.len(), 2);
        assert_eq!((breaks[0].from.as_str(), breaks[0].to.as_str()), ("b", "a"));
        assert_eq!((breaks[1].from.as_str(), breaks[1].to.as_str()), ("e", "c"));
        assert!(find_cycle(&e).is_none());
    }

    #[test]
    fn long_chain_does_not_overflow() {
        let mut e = Edges::new();
        for i in 0..20_000 {
            e.entry(format!("{i:06}"))
                .or_default()
                .insert(format!("{:06}", i + 1));
        }
        assert!(find_cycle(&e).is_none());
        e.entry("020000".into())
            .or_default()
            .insert("000000".into());
        assert_eq!(find_cycle(&e).map(|c| c.len()), Some(20_001));
    }
}
