//! Shared subscription groups (`$share/{group}/{filter}`, MQTT 4.8.2): each group is one entry in
//! the subscription tree; a matching message goes to ONE member, chosen round-robin and
//! preferring members with a live connection.

use crate::router::{SubEntry, SubKey, SubTree};
use crate::session_store::SessionIdx;
use std::collections::HashMap;
use std::sync::Arc;

/// Index of a shared group.
pub type GroupId = u32;

#[derive(Debug)]
struct SharedGroup {
    /// `{group}/{filter}`.
    name: Arc<str>,
    filter: String,
    members: Vec<(SessionIdx, SubEntry)>,
    cursor: usize,
}

/// Every shared group, keyed by `{group}/{filter}`.
#[derive(Debug, Default)]
pub struct SharedGroups {
    by_name: HashMap<String, GroupId>,
    groups: Vec<Option<SharedGroup>>,
    free: Vec<GroupId>,
}

impl SharedGroups {
    /// Adds (or updates) `session` in group `name` = `{group}/{filter}` (the subscription
    /// filter without `$share/`); `filter` is the inner filter. Returns true if the session was
    /// already a member.
    pub fn join(
        &mut self,
        tree: &mut SubTree,
        name: &str,
        filter: &str,
        session: SessionIdx,
        entry: SubEntry,
    ) -> bool {
        let gid = match self.by_name.get(name) {
            Some(&gid) => gid,
            None => {
                let group = SharedGroup {
                    name: Arc::from(name),
                    filter: filter.to_string(),
                    members: Vec::new(),
                    cursor: 0,
                };
                let gid = match self.free.pop() {
                    Some(gid) => {
                        self.groups[gid as usize] = Some(group);
                        gid
                    }
                    None => {
                        self.groups.push(Some(group));
                        (self.groups.len() - 1) as GroupId
                    }
                };
                self.by_name.insert(name.to_string(), gid);
                tree.insert(filter, SubKey::Shared(gid), SubEntry::default());
                gid
            }
        };
        let Some(group) = self.groups.get_mut(gid as usize).and_then(Option::as_mut) else {
            return false;
        };
        match group.members.iter_mut().find(|(s, _)| *s == session) {
            Some(member) => {
                member.1 = entry;
                true
            }
            None => {
                group.members.push((session, entry));
                false
            }
        }
    }

    /// Removes `session` from group `name`; drops the group when it empties. Returns true if
    /// the session was a member.
    pub fn leave(&mut self, tree: &mut SubTree, name: &str, session: SessionIdx) -> bool {
        let Some(&gid) = self.by_name.get(name) else {
            return false;
        };
        let Some(group) = self.groups.get_mut(gid as usize).and_then(Option::as_mut) else {
            return false;
        };
        let Some(pos) = group.members.iter().position(|(s, _)| *s == session) else {
            return false;
        };
        group.members.remove(pos);
        if group.cursor > pos {
            group.cursor -= 1;
        }
        if group.members.is_empty() {
            tree.remove(&group.filter, &SubKey::Shared(gid));
            self.groups[gid as usize] = None;
            self.free.push(gid);
            self.by_name.remove(name);
        }
        true
    }

    /// The `{group}/{filter}` name of group `gid`.
    pub fn name(&self, gid: GroupId) -> Option<&Arc<str>> {
        Some(&self.groups.get(gid as usize)?.as_ref()?.name)
    }

    /// [`SharedGroups::pick`] by the group's `{group}/{filter}` name.
    pub fn pick_by_name(
        &mut self,
        name: &str,
        connected: impl Fn(SessionIdx) -> bool,
    ) -> Option<(SessionIdx, SubEntry)> {
        let gid = *self.by_name.get(name)?;
        self.pick(gid, connected)
    }

    /// True if group `gid` has a member for which `connected` is true.
    pub fn has_connected(&self, gid: GroupId, connected: impl Fn(SessionIdx) -> bool) -> bool {
        self.groups
            .get(gid as usize)
            .and_then(Option::as_ref)
            .is_some_and(|g| g.members.iter().any(|(s, _)| connected(*s)))
    }

    /// Picks the member of group `gid` for a message with share key `key`
    /// (`SharedStrategy::ClientHash`): the same one for the same key while the group's
    /// connected members stay the same; among all members if none is connected.
    pub fn pick_keyed(
        &self,
        gid: GroupId,
        key: u64,
        connected: impl Fn(SessionIdx) -> bool,
    ) -> Option<(SessionIdx, SubEntry)> {
        let key = crate::shared_strategy::member_key(key);
        let group = self.groups.get(gid as usize)?.as_ref()?;
        let live = group.members.iter().filter(|(s, _)| connected(*s)).count();
        let nth = |n: usize, only_live: bool| {
            group
                .members
                .iter()
                .filter(|(s, _)| !only_live || connected(*s))
                .nth((key % n as u64) as usize)
                .copied()
        };
        match (live, group.members.len()) {
            (_, 0) => None,
            (0, all) => nth(all, false),
            (live, _) => nth(live, true),
        }
    }

    /// Picks the member of group `gid` to receive the next message: the next one in
    /// round-robin order for which `connected` is true, else the next one.
    pub fn pick(
        &mut self,
        gid: GroupId,
        connected: impl Fn(SessionIdx) -> bool,
    ) -> Option<(SessionIdx, SubEntry)> {
        let group = self.groups.get_mut(gid as usize)?.as_mut()?;
        let n = group.members.len();
        if n == 0 {
            return None;
        }
        let start = group.cursor % n;
        let chosen = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| connected(group.members[i].0))
            .unwrap_or(start);
        group.cursor = (chosen + 1) % n;
        Some(group.members[chosen])
    }
}
