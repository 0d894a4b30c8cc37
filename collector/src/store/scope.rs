//! How a caller's scope reaches the shared queries.

use crate::domain::Scope;

/// A scope as the one text parameter the shared queries compare with
/// (`$1 IS NULL OR $1 LIKE '%,' || tenant_id || ',%'`): `None` for all
/// tenants, else `,id1,id2,`. Tenant ids are UUIDs (letters, digits and
/// `-`), so no id holds a `LIKE` wildcard or a comma; an id that does is
/// left out, which narrows the scope rather than widening it.
pub(crate) fn scope_binding(scope: &Scope) -> Option<String> {
    let ids: &[String] = match scope {
        Scope::All => return None,
        Scope::Tenant(t) => std::slice::from_ref(t),
        Scope::Tenants(ts) => ts,
    };
    let mut out = String::from(",");
    for id in ids.iter().filter(|id| plain_id(id)) {
        out.push_str(id);
        out.push(',');
    }
    Some(out)
}

/// Whether `id` can sit in a scope binding without meaning more than itself.
fn plain_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod scope_tests {
    use super::*;

    #[test]
    fn a_binding_lists_plain_ids_only() {
        assert_eq!(scope_binding(&Scope::All), None);
        assert_eq!(
            scope_binding(&Scope::Tenant("a-1".into())).as_deref(),
            Some(",a-1,")
        );
        let s = Scope::Tenants(vec!["a".into(), "b%".into(), "c_d".into(), "e".into()]);
        assert_eq!(scope_binding(&s).as_deref(), Some(",a,e,"));
        assert_eq!(scope_binding(&Scope::Tenants(vec![])).as_deref(), Some(","));
    }
}
