//! Clients of the outside services. Each takes its base URL from configuration, so tests point
//! them at local fakes.

pub mod clerk;
pub mod discord;
pub mod paypal;
pub mod resend;
pub mod stripe;
pub mod svix;

/// The response if it succeeded; otherwise the error `make` builds from its status and the
/// start of its body (provider error bodies carry no secrets, but may be long).
pub(crate) async fn success_or<E>(
    response: reqwest::Response,
    make: impl FnOnce(u16, String) -> E,
) -> Result<reqwest::Response, E> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: String = response
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    Err(make(status.as_u16(), body))
}
