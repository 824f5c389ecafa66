//! The pages buyers are sent back to after checkout exist, are HTML, and show only our text.

use crate::util::spawn_app;

#[tokio::test]
async fn the_checkout_return_pages_are_served_as_html() {
    let app = spawn_app().await;
    for (path, heading) in [
        (
            "/checkout/success?session_id=cs_test_123",
            "Thank you, your payment went through",
        ),
        (
            "/checkout/success?provider=paypal",
            "Thank you, your payment went through",
        ),
        ("/checkout/cancel?order_id=not-a-uuid", "Checkout cancelled"),
        (
            "/checkout/error?reason=checkout_expired",
            "This checkout has expired",
        ),
        (
            "/checkout/error?reason=capture_failed",
            "The payment could not be completed",
        ),
        (
            "/checkout/error?reason=unknown_order",
            "We could not find this checkout",
        ),
        ("/checkout/error", "Something went wrong with this checkout"),
    ] {
        let response = app
            .http
            .get(format!("http://{}{path}", app.addr))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let body = response.text().await.expect("body");
        assert!(
            body.contains(&format!("<h1>{heading}</h1>")),
            "{path}:\n{body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_reason_is_never_shown_on_the_error_page() {
    let app = spawn_app().await;
    let body = app
        .http
        .get(format!(
            "http://{}/checkout/error?reason=%3Cscript%3Ealert(1)%3C/script%3E",
            app.addr
        ))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains("Something went wrong with this checkout"),
        "{body}"
    );
    assert!(!body.contains("script"), "{body}");
}
