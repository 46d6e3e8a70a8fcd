//! The relay against a real server: `@modelcontextprotocol/server-everything`
//! resolved once through a local Verdaccio that proxies this machine's npm
//! registry, then spoken to through the real binary (offline, from the
//! cache and the lockfile): a denied tool, resource and prompt are absent
//! and refused; a secret in the server's environment comes back redacted;
//! large, binary and progress-reporting calls pass; one audit line per call.

use serde_json::{Value, json};

use crate::support::env::TestEnv;
use crate::support::mcp::{Client, exchange};
use crate::support::verdaccio::{Options, Verdaccio, upstream_registry};

const SPEC: &str = "@modelcontextprotocol/server-everything@2026.8.31";
const TOKEN: &str = "ghp_R3alLookingT0kenValue0123456789abcdef";

/// A session with the server, offline, with `policy` when given.
fn client(env: &TestEnv, policy: Option<&std::path::Path>, log: &str) -> Client {
    let mut cmd = env.safex();
    cmd.env("SAFEX_OFFLINE", "1")
        .env("SAFEX_AUDIT_LOG", env.root().join(log))
        .env("GITHUB_TOKEN", TOKEN);
    if let Some(p) = policy {
        cmd.arg("--policy").arg(p);
    }
    cmd.args(["-q", "npx", "-y", SPEC, "stdio"]);
    Client::start(cmd)
}

fn audit(env: &TestEnv, log: &str, event: &str) -> Vec<Value> {
    std::fs::read_to_string(env.root().join(log))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == event)
        .collect()
}

fn names(list: &Value, field: &str, key: &str) -> Vec<String> {
    list["result"][field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {list}"))
        .iter()
        .map(|t| t[key].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn server_everything_through_the_relay() {
    let mut registry = Verdaccio::start(Options::with_uplink(upstream_registry()));
    let env = TestEnv::new();
    let mut cold = env.safex();
    cold.env("SAFEX_NPM_REGISTRY", registry.url())
        .args(["-q", "npx", "-y", SPEC, "stdio"]);
    exchange(cold, SPEC, std::time::Duration::from_secs(180), &|| {
        registry.logs()
    });
    registry.stop();

    denied_tool_resource_and_prompt_are_absent_and_refused(&env);
    secrets_are_redacted_and_calls_audited(&env);
}

fn denied_tool_resource_and_prompt_are_absent_and_refused(env: &TestEnv) {
    let policy = env.root().join("deny.toml");
    std::fs::write(
        &policy,
        r#"[tools.servers."@modelcontextprotocol/server-everything"]
deny = ["get-env"]
deny_resources = ["demo://resource/static/document/startup.md", "demo://resource/dynamic/blob/*"]
deny_prompts = ["args-prompt"]
"#,
    )
    .unwrap();
    let mut c = client(env, Some(&policy), "deny.log");
    c.initialize();
    let tools = names(&c.ask(2, "tools/list", json!({})), "tools", "name");
    assert_eq!(tools.len(), 12, "{tools:?}");
    assert!(!tools.contains(&"get-env".to_owned()) && tools.contains(&"echo".to_owned()));
    let call = c.ask(3, "tools/call", json!({"name": "get-env", "arguments": {}}));
    assert_eq!(call["error"]["code"], -32602, "{call}");
    assert_eq!(call["error"]["message"], "Unknown tool: get-env");

    let res = names(&c.ask(4, "resources/list", json!({})), "resources", "uri");
    assert_eq!(res.len(), 6, "{res:?}");
    assert!(!res.iter().any(|u| u.ends_with("startup.md")));
    let templates = names(
        &c.ask(5, "resources/templates/list", json!({})),
        "resourceTemplates",
        "uriTemplate",
    );
    assert_eq!(templates, ["demo://resource/dynamic/text/{resourceId}"]);
    let read = c.ask(
        6,
        "resources/read",
        json!({"uri": "demo://resource/dynamic/blob/1"}),
    );
    assert_eq!(read["error"]["code"], -32002, "{read}");
    let read = c.ask(
        7,
        "resources/read",
        json!({"uri": "demo://resource/static/document/features.md"}),
    );
    assert!(read["result"]["contents"][0]["text"].is_string(), "{read}");

    let prompts = names(&c.ask(8, "prompts/list", json!({})), "prompts", "name");
    assert_eq!(
        prompts,
        ["simple-prompt", "completable-prompt", "resource-prompt"]
    );
    let got = c.ask(
        9,
        "prompts/get",
        json!({"name": "args-prompt", "arguments": {"city": "Oslo"}}),
    );
    assert_eq!(
        got["error"]["message"], "Unknown prompt: args-prompt",
        "{got}"
    );
    let (code, err) = c.finish();
    assert_eq!(code, 0, "{err}");

    let calls = audit(env, "deny.log", "mcp-call");
    let denied: Vec<&str> = calls
        .iter()
        .filter(|c| c["decision"] == "deny")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        denied,
        ["get-env", "demo://resource/dynamic/blob/1", "args-prompt"],
        "{calls:?}"
    );
    let session = &audit(env, "deny.log", "mcp-session")[0];
    assert_eq!(session["denied"], 3, "{session}");
    assert_eq!(session["calls"], 1, "{session}");
}

fn secrets_are_redacted_and_calls_audited(env: &TestEnv) {
    let mut c = client(env, None, "calls.log");
    c.initialize();
    let got = c.ask(2, "tools/call", json!({"name": "get-env", "arguments": {}}));
    let text = got["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{got}"));
    assert!(!text.contains(TOKEN), "the token leaked: {text}");
    assert!(text.contains("[redacted:GITHUB_TOKEN]"), "{text}");
    let home = env.home().display().to_string();
    assert!(
        text.contains(&home),
        "values that are not secrets stay: {text}"
    );

    let image = c.ask(
        3,
        "tools/call",
        json!({"name": "get-tiny-image", "arguments": {}}),
    );
    let parts = image["result"]["content"].as_array().unwrap();
    let png = parts
        .iter()
        .find(|p| p["type"] == "image")
        .unwrap_or_else(|| panic!("{image}"));
    assert_eq!(png["mimeType"], "image/png");
    assert!(
        png["data"].as_str().unwrap().starts_with("iVBORw0KGgo"),
        "{png}"
    );

    let big = "x".repeat(5 << 20);
    let args = json!({"message": big});
    let echo = c.ask(4, "tools/call", json!({"name": "echo", "arguments": args}));
    let echoed = echo["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        echoed.len() >= 5 << 20 && echoed.ends_with(&big[..100]),
        "echo: {} bytes",
        echoed.len()
    );

    c.send(
        &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 2},
        "_meta": {"progressToken": "tok"}}}),
    );
    let done = c.answer(5, "tools/call");
    assert!(
        done["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("completed"),
        "{done}"
    );
    let progress: Vec<&Value> = c
        .others
        .iter()
        .filter(|m| {
            m["method"] == "notifications/progress" && m["params"]["progressToken"] == "tok"
        })
        .collect();
    assert_eq!(progress.len(), 2, "{:?}", c.others);

    // Cancelled: the pending call is audited as such, never as unanswered.
    c.send(
        &json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 2}}}),
    );
    c.send(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 6, "reason": "test"}}));
    let ping = c.ask(7, "ping", json!({}));
    assert!(ping.get("result").is_some(), "{ping}");
    let (code, err) = c.finish();
    assert_eq!(code, 0, "{err}");

    let calls = audit(env, "calls.log", "mcp-call");
    let by = |name: &str| -> Vec<&Value> { calls.iter().filter(|c| c["name"] == name).collect() };
    let get_env = by("get-env")[0];
    assert!(get_env["redactions"].as_u64().unwrap() >= 1, "{get_env}");
    let echo = by("echo")[0];
    use sha2::Digest;
    let digest = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(serde_json::to_string(&args).unwrap()))
    );
    assert_eq!(
        echo["arguments"],
        digest.as_str(),
        "arguments are hashed by default"
    );
    assert!(
        echo["result_bytes"].as_u64().unwrap() > 5 << 20,
        "{}",
        echo["result_bytes"]
    );
    for field in ["package", "version", "root", "tree", "client", "user"] {
        assert!(
            echo[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {echo}"
        );
    }
    assert_eq!(echo["package"], "@modelcontextprotocol/server-everything");
    assert_eq!(echo["version"], "2026.8.31");
    assert_eq!(echo["method"], "tools/call");
    assert_eq!(echo["decision"], "allow");
    assert_eq!(echo["outcome"], "result");
    assert!(echo["duration_ms"].as_f64().is_some(), "{echo}");
    assert!(
        echo["is_error"].is_null() || echo["is_error"] == false,
        "{echo}"
    );
    let long = by("trigger-long-running-operation");
    // The two lines come from different relay threads (the answer's line is
    // written after the answer is passed on), so their order is not defined.
    let mut outcomes: Vec<&str> = long
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes, ["cancelled", "result"], "{long:?}");
    assert!(
        !calls.iter().any(|c| c["outcome"] == "unanswered"),
        "{calls:?}"
    );
    let session = &audit(env, "calls.log", "mcp-session")[0];
    assert_eq!(session["calls"], 5, "{session}");
    assert!(session["redactions"].as_u64().unwrap() >= 1, "{session}");
    assert_eq!(session["non_json_lines"], 0, "{session}");
}
