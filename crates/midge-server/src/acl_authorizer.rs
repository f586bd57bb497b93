//! Mosquitto's ACL file as the core's [`Authorizer`].

use midge_auth::{Access, Acl, AuthError};
use midge_core::{Authorizer, ClientIdentity};
use std::path::Path;

/// An ACL file, parsed. A reload builds a new one and installs it in the broker.
#[derive(Debug)]
pub(crate) struct AclAuthorizer {
    acl: Acl,
}

impl AclAuthorizer {
    /// Reads and parses the ACL file at `path`.
    pub(crate) fn load(path: &Path) -> Result<AclAuthorizer, AuthError> {
        Ok(AclAuthorizer {
            acl: Acl::load(path)?,
        })
    }
}

impl Authorizer for AclAuthorizer {
    fn can_publish(&self, who: &ClientIdentity<'_>, topic: &str) -> bool {
        self.acl
            .check(who.client_id, who.username, topic, Access::Write)
    }

    fn can_subscribe(&self, who: &ClientIdentity<'_>, filter: &str) -> bool {
        self.acl
            .check_subscribe(who.client_id, who.username, filter)
    }

    fn can_receive(&self, who: &ClientIdentity<'_>, topic: &str) -> bool {
        self.acl
            .check(who.client_id, who.username, topic, Access::Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mosquitto_rules_through_the_core_seam() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("acl");
        std::fs::write(
            &path,
            "topic read public/#\nuser alice\ntopic readwrite alice/#\ntopic deny alice/secret\n\
             pattern write devices/%c/status\n",
        )
        .expect("write");
        let acl = AclAuthorizer::load(&path).expect("load");
        let alice = ClientIdentity {
            client_id: "phone",
            username: Some("alice"),
        };
        let anon = ClientIdentity {
            client_id: "sensor1",
            username: None,
        };
        assert!(acl.can_publish(&alice, "alice/x"));
        assert!(!acl.can_receive(&alice, "alice/secret"));
        assert!(acl.can_subscribe(&alice, "alice/+"));
        assert!(!acl.can_subscribe(&anon, "alice/#"));
        assert!(acl.can_receive(&anon, "public/news"));
        assert!(!acl.can_publish(&anon, "public/news"));
        assert!(acl.can_publish(&anon, "devices/sensor1/status"));
        assert!(!acl.can_publish(&anon, "devices/sensor2/status"));
        std::fs::write(&path, "topic readwrite #\n").expect("write");
        let fresh = AclAuthorizer::load(&path).expect("reload");
        assert!(fresh.can_publish(&anon, "public/news"));
    }
}
