//! Absolute URLs of the API's resources under `LEASEHOLD_PUBLIC_URL`. Each template is the
//! route's own path (a unit test checks every one against the generated OpenAPI
//! document), filled with one value.

use crate::state::AppState;

/// `GET /api/download/{lease_id}`.
pub const DOWNLOAD: &str = "/api/download/{lease_id}";
/// `POST /api/mailbox/{id}/drop` (the id is the drop token).
pub const DROP: &str = "/api/mailbox/{id}/drop";
/// `GET /api/mailbox/{id}/messages`.
pub const MESSAGES: &str = "/api/mailbox/{id}/messages";
/// `GET /api/mailbox/{id}/events`.
pub const EVENTS: &str = "/api/mailbox/{id}/events";
/// `GET|PUT /api/checkpoint/{workflow_id}`.
pub const CHECKPOINT: &str = "/api/checkpoint/{workflow_id}";
/// `GET /api/claim/{token}`.
pub const CLAIM: &str = "/api/claim/{token}";
/// `GET /api/leases/{lease_id}/deliveries`.
pub const DELIVERIES: &str = "/api/leases/{lease_id}/deliveries";

/// Every template, for the check against the routed paths.
pub const ALL: [&str; 7] = [DOWNLOAD, DROP, MESSAGES, EVENTS, CHECKPOINT, CLAIM, DELIVERIES];

/// The template with its one `{…}` parameter replaced by `value`.
fn fill(template: &str, value: &str) -> String {
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) => format!("{}{value}{}", &template[..open], &template[close + 1..]),
        _ => template.to_owned(),
    }
}

/// The absolute URL of `template` filled with `value`.
pub fn url(state: &AppState, template: &str, value: &str) -> String {
    state.url(&fill(template, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_their_one_parameter() {
        assert_eq!(fill(DROP, "drp_1"), "/api/mailbox/drp_1/drop");
        assert_eq!(fill(CHECKPOINT, "wf"), "/api/checkpoint/wf");
        assert_eq!(fill(DOWNLOAD, "lse_1"), "/api/download/lse_1");
    }

    #[test]
    fn every_template_is_a_routed_path() {
        let doc = crate::openapi::document();
        for template in ALL {
            assert!(doc.paths.paths.contains_key(template), "{template} is not a routed path");
        }
    }
}
