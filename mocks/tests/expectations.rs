//! Expectations on the journal, verified on demand and when the stack is
//! dropped, with the closest request named when one is not met.

use idprop_mocks::expect::request;
use idprop_mocks::uaa::APP_CLIENT;
use idprop_mocks::Stack;

async fn token(stack: &Stack, tenant: &str) {
    let r = stack
        .http_client()
        .post(format!("{}/oauth/token", stack.uaa_url(tenant)))
        .basic_auth(APP_CLIENT.0, Some(APP_CLIENT.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn met_expectations_verify_and_pass_on_drop() {
    let stack = Stack::start().await.unwrap();
    stack
        .expect(
            request()
                .component("uaa")
                .host("mytenant.authentication.eu10.idp.test")
                .path("/oauth/token")
                .basic_user(APP_CLIENT.0)
                .form("grant_type", "client_credentials"),
        )
        .times(2);
    stack.expect(request().host("othertenant.authentication.eu10.idp.test")).at_most(0);
    token(&stack, "mytenant").await;
    token(&stack, "mytenant").await;
    stack.verify().unwrap();
}

#[tokio::test]
async fn an_unmet_expectation_names_the_closest_request_and_what_differed() {
    let stack = Stack::start().await.unwrap();
    stack
        .expect(request().host("mytenant.authentication.eu10.idp.test").form("grant_type", "password"))
        .times(1)
        .named("a password grant");
    token(&stack, "mytenant").await;
    let err = stack.verify().unwrap_err().to_string();
    assert!(err.contains("a password grant: wanted exactly 1 matching request(s), saw 0"), "{err}");
    assert!(err.contains("closest: 200 POST https://mytenant.authentication.eu10.idp.test/oauth/token"), "{err}");
    assert!(err.contains(r#"expected form field grant_type="password", got Some("client_credentials")"#), "{err}");
    stack.reset_expectations();
}

#[tokio::test]
async fn dropping_a_stack_with_an_unmet_expectation_fails_the_test() {
    let outcome = tokio::spawn(async {
        let stack = Stack::start().await.unwrap();
        stack.expect(request().path("/never")).named("never called");
        drop(stack);
    })
    .await;
    let panic = outcome.expect_err("the drop must fail the test").into_panic();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("never called") && text.contains("the journal is empty"), "{text}");
}
