//! The encryption middleware against the official one (npm `@inngest/middleware-encryption`,
//! pinned in `tests/encryption-fixture/`, installed by `scripts/test.sh`): what either
//! encrypts, the other decrypts, across a key rotation; a wrong key is a clear error on both
//! sides. And the middleware in runs: decrypted input, encrypted results, decrypt-only mode.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use inngest_sdk::middleware::encryption::{EncryptionError, EncryptionMiddleware};
use inngest_sdk::step::hash_step_id;
use inngest_sdk::testing::{EventApi, TestEngine};
use inngest_sdk::{
    Client, Config, Ctx, Error, Event, Function, FunctionOpts, ServeHandler, Trigger,
};
use serde_json::{Value, json};

const OLD_KEY: &str = "the academy's first encryption key";
const NEW_KEY: &str = "the academy's rotated key of 2026";
const WRONG_KEY: &str = "a key nobody configured";

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/encryption-fixture")
}

/// Runs the official middleware's hooks on `operations` (see `crypt.mjs`); `None`, with a
/// notice, when the fixture is not installed (`scripts/test.sh` installs it with `npm ci`).
fn official(operations: &Value) -> Option<Vec<Value>> {
    let dir = fixture_dir();
    if !dir
        .join("node_modules/@inngest/middleware-encryption")
        .exists()
    {
        eprintln!(
            "notice: skipping the differential encryption test: the npm fixture is not installed \
             (npm ci --prefix inngest-sdk/tests/encryption-fixture)"
        );
        return None;
    }
    let mut node = Command::new("node");
    node.arg("crypt.mjs").current_dir(&dir);
    Some(run_fixture(node, operations))
}

/// Runs a fixture script with `operations` on its stdin; the JSON array it answers.
fn run_fixture(mut command: Command, operations: &Value) -> Vec<Value> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(operations.to_string().as_bytes())
        .expect("operations written");
    let output = child.wait_with_output().expect("the fixture ends");
    assert!(output.status.success(), "{command:?} failed: {output:?}");
    serde_json::from_slice(&output.stdout).expect("the fixture answers JSON")
}

fn ok(result: &Value) -> Value {
    assert!(
        result.get("error").is_none(),
        "the official middleware failed: {result}"
    );
    result["ok"].clone()
}

/// Personal data of every JSON shape the middleware carries.
fn samples() -> Vec<Value> {
    vec![
        json!({ "email": "ada@example.com", "name": "Ada Lovelace", "pack": { "sessions": 4 } }),
        json!("ada@example.com"),
        json!(12.5),
        json!([1, "Zoë ✓ 🎨", { "nested": null }, false]),
    ]
}

fn purchase_event() -> Value {
    json!({
        "name": "purchase/mentorship",
        "data": {
            "order_id": "ord_1",
            "encrypted": { "buyer_email": "ada@example.com", "buyer_name": "Ada Lovelace" }
        }
    })
}

fn keys(keys: &[&str]) -> EncryptionMiddleware {
    EncryptionMiddleware::new(keys).expect("keys")
}

#[test]
fn typescript_encrypted_values_decrypt_in_rust_across_a_rotation() {
    let mut operations = Vec::new();
    for value in samples() {
        operations.push(json!({ "op": "encrypt_step", "keys": [OLD_KEY], "value": value }));
        operations.push(json!({ "op": "encrypt_output", "keys": [OLD_KEY], "value": value }));
    }
    operations
        .push(json!({ "op": "encrypt_send", "keys": [OLD_KEY], "events": [purchase_event()] }));
    operations.push(
        json!({ "op": "encrypt_invoke", "keys": [OLD_KEY], "data": purchase_event()["data"] }),
    );
    let Some(results) = official(&Value::Array(operations)) else {
        return;
    };

    // A process that rotated to the new key still reads what the old key wrote.
    let rotated = keys(&[NEW_KEY, OLD_KEY]);
    let wrong = keys(&[WRONG_KEY]);
    for (i, value) in samples().iter().enumerate() {
        for encrypted in [ok(&results[2 * i]), ok(&results[2 * i + 1])] {
            assert!(
                EncryptionMiddleware::is_encrypted(&encrypted),
                "{encrypted}"
            );
            assert!(!encrypted.to_string().contains("ada@example.com"));
            assert_eq!(&rotated.decrypt_value(&encrypted).expect("decrypts"), value);
            let refused = wrong
                .decrypt_value(&encrypted)
                .expect_err("a wrong key is refused");
            assert!(
                matches!(refused, EncryptionError::WrongKey { keys: 1 }),
                "{refused:?}"
            );
            assert!(
                refused.to_string().contains("could not be decrypted"),
                "{refused}"
            );
        }
    }
    let n = samples().len() * 2;
    for mut data in [ok(&results[n])[0]["data"].clone(), ok(&results[n + 1])] {
        assert_eq!(
            data["order_id"], "ord_1",
            "only the `encrypted` field is encrypted"
        );
        assert!(EncryptionMiddleware::is_encrypted(&data["encrypted"]));
        rotated.decrypt_event_data(&mut data).expect("decrypts");
        assert_eq!(data, purchase_event()["data"]);
    }
}

#[test]
fn rust_encrypted_values_decrypt_in_typescript_across_a_rotation() {
    let writer = keys(&[OLD_KEY]);
    let mut operations = Vec::new();
    for value in samples() {
        let encrypted = writer.encrypt_value(&value).expect("encrypts");
        for keys in [vec![NEW_KEY, OLD_KEY], vec![WRONG_KEY]] {
            operations.push(json!({ "op": "decrypt_step", "keys": keys, "value": encrypted }));
        }
    }
    let mut event = purchase_event();
    writer
        .encrypt_event_data(&mut event["data"])
        .expect("encrypts");
    assert_eq!(event["data"]["order_id"], "ord_1");
    for keys in [vec![NEW_KEY, OLD_KEY], vec![WRONG_KEY]] {
        operations.push(json!({ "op": "decrypt_event", "keys": keys, "event": event }));
    }
    let Some(results) = official(&Value::Array(operations)) else {
        return;
    };
    for (i, value) in samples().iter().enumerate() {
        assert_eq!(&ok(&results[2 * i]), value);
        let refused = &results[2 * i + 1];
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("wrong secret key")),
            "the official middleware refuses a wrong key: {refused}"
        );
    }
    let n = samples().len() * 2;
    assert_eq!(ok(&results[n]), purchase_event());
    assert!(results[n + 1].get("error").is_some(), "{}", results[n + 1]);
}

/// Reads the buyer from the decrypted event, returns a greeting through a step.
fn greet() -> Function<()> {
    Function::new(
        FunctionOpts::new("greet").with_trigger(Trigger::event("purchase/mentorship")),
        |ctx: Ctx<Value, ()>| async move {
            let buyer = ctx.event.data["encrypted"]["buyer_name"]
                .as_str()
                .ok_or_else(|| Error::non_retriable("no buyer name: the event was not decrypted"))?
                .to_owned();
            let greeting: String = ctx
                .step
                .run("greeting", || async move {
                    Ok::<_, Error>(format!("Welcome, {buyer}"))
                })
                .await?;
            ctx.step
                .send_event(
                    "notify",
                    vec![Event::new(
                        "mentorship/welcomed",
                        json!({ "order_id": "ord_1", "encrypted": { "greeting": greeting } }),
                    )],
                )
                .await?;
            Ok(json!({ "greeting": greeting }))
        },
    )
}

fn engine(middleware: EncryptionMiddleware, api: &EventApi) -> TestEngine<()> {
    let config = Config::new("app")
        .dev(None)
        .with_event_api_base_url(&api.url())
        .expect("url");
    let client = Client::new(config).with_middleware(middleware);
    TestEngine::new(ServeHandler::new(client, (), [greet()]).expect("valid")).with_event_api(api)
}

#[tokio::test]
async fn runs_read_typescript_encrypted_events_and_write_results_typescript_reads() {
    let Some(results) = official(&json!([
        { "op": "encrypt_send", "keys": [OLD_KEY], "events": [purchase_event()] }
    ])) else {
        return;
    };
    let event: Event<Value> = serde_json::from_value(ok(&results[0])[0].clone()).expect("event");
    let api = EventApi::start().await.expect("fake event API");
    let run = engine(keys(&[NEW_KEY, OLD_KEY]), &api)
        .run("greet", event)
        .await;
    assert!(run.result.is_ok(), "{:?}", run.result);

    // Nothing Inngest holds shows the buyer; the official middleware reads all of it.
    let output = run.result.clone().expect("output");
    let step = run.state[&hash_step_id("greeting", 0)]["data"].clone();
    let sent = serde_json::to_value(&run.sent_events[0]).expect("event");
    for stored in [&output, &step, &sent] {
        assert!(
            // With its space, the name cannot turn up by chance in base64 ciphertext.
            !stored.to_string().contains("Ada Lovelace"),
            "plain text reached Inngest: {stored}"
        );
    }
    let Some(results) = official(&json!([
        { "op": "decrypt_step", "keys": [NEW_KEY], "value": output },
        { "op": "decrypt_step", "keys": [NEW_KEY], "value": step },
        { "op": "decrypt_event", "keys": [NEW_KEY], "event": sent },
    ])) else {
        return;
    };
    assert_eq!(
        ok(&results[0]),
        json!({ "greeting": "Welcome, Ada Lovelace" })
    );
    assert_eq!(ok(&results[1]), json!("Welcome, Ada Lovelace"));
    assert_eq!(
        ok(&results[2])["data"]["encrypted"],
        json!({ "greeting": "Welcome, Ada Lovelace" })
    );
}

#[tokio::test]
async fn a_wrong_key_fails_the_run_with_a_clear_error() {
    let mut event = purchase_event();
    keys(&[OLD_KEY])
        .encrypt_event_data(&mut event["data"])
        .expect("encrypts");
    let event: Event<Value> = serde_json::from_value(event).expect("event");
    let api = EventApi::start().await.expect("fake event API");
    let run = engine(keys(&[WRONG_KEY]), &api)
        .run("greet", event)
        .with_max_attempts(2)
        .await;
    let error = run.error();
    assert!(
        error
            .message
            .contains("could not be decrypted with any of the 1 configured key"),
        "{error:?}"
    );
    assert_eq!(
        run.requests.len(),
        2,
        "retried: another process may hold the new key"
    );
    assert!(
        run.steps.is_empty(),
        "the function never ran on undecryptable input"
    );
}

#[tokio::test]
async fn decrypt_only_mode_reads_encrypted_data_and_writes_plain() {
    let mut event = purchase_event();
    keys(&[OLD_KEY])
        .encrypt_event_data(&mut event["data"])
        .expect("encrypts");
    let event: Event<Value> = serde_json::from_value(event).expect("event");
    let api = EventApi::start().await.expect("fake event API");
    let run = engine(keys(&[OLD_KEY]).decrypt_only(), &api)
        .run("greet", event)
        .await;
    assert_eq!(
        run.output::<Value>(),
        json!({ "greeting": "Welcome, Ada Lovelace" })
    );
    assert_eq!(
        run.state[&hash_step_id("greeting", 0)]["data"],
        json!("Welcome, Ada Lovelace")
    );
    assert_eq!(
        run.sent_events[0].data["encrypted"],
        json!({ "greeting": "Welcome, Ada Lovelace" })
    );
}

#[test]
fn keys_are_required_and_never_printed() {
    assert!(matches!(
        EncryptionMiddleware::new([" ", ""]),
        Err(EncryptionError::NoKeys)
    ));
    let middleware =
        EncryptionMiddleware::from_list(&format!("{NEW_KEY}, {OLD_KEY}")).expect("keys");
    let debug = format!("{middleware:?}");
    assert!(
        !debug.contains(NEW_KEY) && !debug.contains(OLD_KEY),
        "{debug}"
    );
    assert!(debug.contains("keys: 2"), "{debug}");
}

/// Runs the Python SDK's official middleware on `operations` (see
/// `encryption-fixture-py/crypt.py`); `None`, with a notice, when its virtualenv is not
/// installed (`scripts/test.sh` makes it with pip).
fn official_python(operations: &Value) -> Option<Vec<Value>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/encryption-fixture-py");
    let python = dir.join(".venv/bin/python");
    if !python.exists() {
        eprintln!(
            "notice: skipping the Python encryption differential test: its virtualenv is not \
             installed (scripts/test.sh makes it)"
        );
        return None;
    }
    let mut command = Command::new(python);
    command.arg("crypt.py").current_dir(&dir);
    Some(run_fixture(command, operations))
}

/// The Python SDK's `inngest-encryption` reads what we write and we read what it writes, across
/// a key rotation; a value sealed with a key it does not have is refused, never garbage.
#[test]
fn values_cross_between_the_python_middleware_and_ours_both_ways_and_across_rotation() {
    let value = json!({"email": "ada@example.com", "name": "Ada", "sessions": [1, 2]});
    let ours_old = EncryptionMiddleware::new([OLD_KEY]).expect("keys");
    let rotated = EncryptionMiddleware::new([NEW_KEY, OLD_KEY]).expect("keys");
    let sealed_by_us = ours_old.encrypt_value(&value).expect("sealed");
    let Some(results) = official_python(&json!([
        {"op": "encrypt", "keys": [OLD_KEY], "value": value},
        {"op": "decrypt", "keys": [OLD_KEY], "value": sealed_by_us},
        {"op": "decrypt", "keys": [NEW_KEY, OLD_KEY], "value": sealed_by_us},
        {"op": "decrypt", "keys": [WRONG_KEY], "value": sealed_by_us},
    ])) else {
        return;
    };
    let sealed_by_python = ok(&results[0]);
    assert!(EncryptionMiddleware::is_encrypted(&sealed_by_python));
    assert_eq!(
        rotated.decrypt_value(&sealed_by_python).expect("opened"),
        value
    );
    assert_eq!(ok(&results[1]), value, "Python opens ours");
    assert_eq!(
        ok(&results[2]),
        value,
        "and after a rotation, with the old key as fallback"
    );
    assert!(results[3].get("error").is_some(), "{:?}", results[3]);
    let wrong = EncryptionMiddleware::new([WRONG_KEY]).expect("keys");
    assert!(
        wrong.decrypt_value(&sealed_by_python).is_err(),
        "a wrong key is an error, never garbage"
    );
}

#[tokio::test]
async fn checkpointed_results_are_sealed_and_read_back_decrypted_in_the_same_call() {
    use std::sync::{Arc, Mutex};

    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = seen.clone();
    let function = Function::new(
        FunctionOpts::new("welcome")
            .with_trigger(Trigger::event("purchase/mentorship"))
            .with_checkpoint(inngest_sdk::Checkpoint::safe()),
        move |ctx: Ctx<Value, ()>| {
            let recorder = recorder.clone();
            async move {
                let name: String = ctx
                    .step
                    .run("name", || async {
                        Ok::<_, Error>("Ada Lovelace".to_owned())
                    })
                    .await?;
                recorder.lock().expect("lock").push(name.clone());
                let greeting: String = ctx
                    .step
                    .run("greeting", || async move {
                        Ok::<_, Error>(format!("Welcome, {name}"))
                    })
                    .await?;
                Ok(json!({ "greeting": greeting }))
            }
        },
    );
    let api = EventApi::start().await.expect("fake API");
    let config = Config::new("app")
        .dev(None)
        .with_api_base_url(&api.url())
        .expect("url");
    let client = Client::new(config).with_middleware(keys(&[NEW_KEY]));
    let handler = ServeHandler::new(client, (), [function]).expect("valid");
    let run = TestEngine::new(handler)
        .with_event_api(&api)
        .run(
            "welcome",
            Event::new("purchase/mentorship", json!({ "order_id": "ord_1" })),
        )
        .await;
    assert!(run.result.is_ok(), "{:?}", run.result);
    assert_eq!(run.requests.len(), 1, "both steps ran in one call");
    // The function went on with the plain value, decrypted as a replay would decrypt it.
    assert_eq!(*seen.lock().expect("lock"), ["Ada Lovelace"]);
    let checkpoints = api.checkpoints();
    assert_eq!(checkpoints.len(), 2);
    for sent in checkpoints.iter().map(|c| json!(c.steps).to_string()) {
        assert!(
            !sent.contains("Ada Lovelace"),
            "a plain result was checkpointed: {sent}"
        );
    }
    assert!(!run.requests[0].body.to_string().contains("Ada Lovelace"));
}
