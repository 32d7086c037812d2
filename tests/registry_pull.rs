//! Pulls from a real registry (`docker-registry` on 127.0.0.1), through a token-auth front and a
//! tampering proxy. Needs the Debian packages docker-registry, skopeo, apache2-utils and
//! busybox-static.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use cog::oci::{BuiltImage, Platform};

use cog::registry::{Client, ClientOptions, Reference, RegistryError};
use common::proxy::{FrontOptions, FrontProxy};
use common::registry::{
    TestRegistry, busybox_image, busybox_index, free_port, layout_of, temp_store,
};
use layers::BlobStore;

fn client() -> Client {
    client_with_config(None)
}

/// A client whose Docker config is `config` (or an empty dir: no credentials from the host).
fn client_with_config(config: Option<&Path>) -> Client {
    let options = ClientOptions {
        docker_config: Some(config.map_or_else(
            || "/nonexistent/cog-test/config.json".into(),
            Path::to_path_buf,
        )),
        ..ClientOptions::default()
    };
    Client::new(options).unwrap()
}

fn docker_config(dir: &Path, host: &str, user: &str, password: &str) -> std::path::PathBuf {
    let path = dir.join("docker-config").join("config.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let json = serde_json::json!({"auths": {host: {"username": user, "password": password}}});
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// A busybox image pushed to `registry` as `test/busybox:v1`.
fn pushed_image(registry: &TestRegistry) -> (tempfile::TempDir, BuiltImage) {
    let (dir, store) = temp_store();
    let image = busybox_image(&store, &Platform::linux_amd64());
    let layout = layout_of(&store, &image.image_ref(), dir.path(), "v1");
    registry.push_layout(&layout, "v1", "test/busybox:v1", false);
    (dir, image)
}

fn assert_same_image(store: &BlobStore, pulled: &cog::oci::SourceImage, built: &BuiltImage) {
    assert_eq!(pulled.manifest_digest, built.manifest_digest);
    assert_eq!(pulled.config, built.config);
    for layer in &pulled.layers {
        assert!(
            store.has(&layer.digest),
            "layer {} in the store",
            layer.digest
        );
    }
    assert_eq!(
        pulled.layers.iter().map(|l| l.diff_id).collect::<Vec<_>>(),
        built.config.rootfs.diff_ids
    );
}

#[tokio::test]
async fn pulls_by_tag_then_skips_blobs_it_has() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let (_dir, store) = temp_store();
    let reference = Reference::parse(&registry.reference("test/busybox:v1")).unwrap();
    let client = client();
    let pulled = client
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);
    // Layers are stored exactly as served: the same gzip bytes we built.
    let layer = &pulled.layers[0];
    assert_eq!(
        layer.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        std::fs::metadata(store.blob_path(&layer.digest))
            .unwrap()
            .len(),
        layer.size
    );

    // Everything is there now: a second pull with a fresh client fetches no blob.
    let front = FrontProxy::start(&registry.host, FrontOptions::default());
    let via_front = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
    let again = client
        .pull(&via_front, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_eq!(again.manifest_digest, built.manifest_digest);
    let blob_requests: Vec<String> = front
        .forwarded()
        .into_iter()
        .filter(|r| r.contains("/blobs/"))
        .collect();
    assert!(
        blob_requests.is_empty(),
        "no blob fetched again: {blob_requests:?}"
    );
}

#[tokio::test]
async fn pulls_by_digest() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let (_dir, store) = temp_store();
    let reference =
        Reference::parse(&registry.reference(&format!("test/busybox@{}", built.manifest_digest)))
            .unwrap();
    let pulled = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);

    // Pinned and complete in the store: no registry needed any more.
    drop(registry);
    let again = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_eq!(again, pulled);
}

#[tokio::test]
async fn an_index_picks_the_platform() {
    let registry = TestRegistry::start();
    let (src, src_store) = temp_store();
    let (index, amd64, arm64) = busybox_index(&src_store);
    let layout = layout_of(&src_store, &index, src.path(), "multi");
    registry.push_layout(&layout, "multi", "test/multi:v1", true);
    let reference = Reference::parse(&registry.reference("test/multi:v1")).unwrap();
    let client = client();

    let (_dir, store) = temp_store();
    let pulled = client
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &amd64);
    let pulled = client
        .pull(
            &reference,
            &"linux/arm64".parse().unwrap(),
            &store,
            &report::Quiet,
        )
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &arm64);
    assert_eq!(pulled.config.architecture, "arm64");

    let err = client
        .pull(
            &reference,
            &"linux/s390x".parse().unwrap(),
            &store,
            &report::Quiet,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}/test/multi:v1: no image for platform linux/s390x on registry {}; available: linux/amd64, linux/arm64",
            registry.host, registry.host
        )
    );
}

#[tokio::test]
async fn basic_auth_with_docker_config_and_a_wrong_password() {
    let registry = TestRegistry::start_with_htpasswd("alice", "right-password");
    let (_src, built) = pushed_image(&registry);
    let (dir, store) = temp_store();
    let reference = Reference::parse(&registry.reference("test/busybox:v1")).unwrap();

    let config = docker_config(dir.path(), &registry.host, "alice", "right-password");
    let pulled = client_with_config(Some(&config))
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);

    let wrong = docker_config(
        &dir.path().join("wrong"),
        &registry.host,
        "alice",
        "wrong-password",
    );
    let err = client_with_config(Some(&wrong))
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "unauthorized: registry {} refused access to {reference}",
            registry.host
        )),
        "{message}"
    );
    assert!(message.contains("user \"alice\""), "{message}");
    assert!(
        message.contains(&wrong.display().to_string()),
        "names the config consulted: {message}"
    );

    let err = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "sent no credentials; no credentials: /nonexistent/cog-test/config.json does not exist"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn bearer_token_flow() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    for access_token_field in [false, true] {
        let front = FrontProxy::start(
            &registry.host,
            FrontOptions {
                bearer: true,
                token_credentials: Some(("bob".into(), "hunter2".into())),
                access_token_field,
                ..FrontOptions::default()
            },
        );
        let (dir, store) = temp_store();
        let config = docker_config(dir.path(), &front.host, "bob", "hunter2");
        let reference = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
        let pulled = client_with_config(Some(&config))
            .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
            .await
            .unwrap();
        assert_same_image(&store, &pulled, &built);
        let tokens = front.token_requests();
        assert_eq!(
            tokens.len(),
            1,
            "one token, cached for every request of the pull: {tokens:?}"
        );
        assert!(
            tokens[0].contains("scope=repository%3Atest%2Fbusybox%3Apull"),
            "{tokens:?}"
        );
        assert!(tokens[0].contains("service=cog-test"), "{tokens:?}");

        // The token server refuses other credentials.
        let wrong = docker_config(&dir.path().join("wrong"), &front.host, "bob", "nope");
        let err = client_with_config(Some(&wrong))
            .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("token server http://{}/token refused", front.host)),
            "{message}"
        );
        assert!(message.contains(&wrong.display().to_string()), "{message}");
    }
}

#[tokio::test]
async fn a_tampered_blob_is_refused_and_not_stored() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let layer = built.manifest.layers[0].digest;
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            tamper_blob: Some(layer.to_string()),
            ..FrontOptions::default()
        },
    );
    let (_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
    let err = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "blob {layer} of {reference} from registry {}: digest mismatch",
            front.host
        )),
        "{message}"
    );
    assert!(!store.has(&layer), "no corrupt blob left in the store");
    let leftovers = store.temp_files();
    assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");
}

#[tokio::test]
async fn unknown_tag_is_manifest_unknown() {
    let registry = TestRegistry::start();
    let (_src, _built) = pushed_image(&registry);
    let (_dir, store) = temp_store();
    for name in ["test/busybox:nope", "test/absent:v1"] {
        let reference = Reference::parse(&registry.reference(name)).unwrap();
        let err = client()
            .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "manifest for {}/{name} not found: manifest unknown (registry {})",
                registry.host, registry.host
            )
        );
    }
}

#[tokio::test]
async fn registry_down_is_a_clear_error() {
    let host = format!("127.0.0.1:{}", free_port());
    let (_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{host}/test/busybox:v1")).unwrap();
    let started = std::time::Instant::now();
    let err = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot reach registry {host} for {reference}: ")),
        "{message}"
    );
    assert!(message.contains("Connection refused"), "{message}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a refused connection is not retried for long"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_and_cut_transfers_resume() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            fail_blob_requests: 1,
            cut_blob_requests: 1,
            ..FrontOptions::default()
        },
    );
    let (_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
    let pulled = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);
    let requests = front.blob_requests();
    assert_eq!(
        requests.len(),
        4,
        "config and layer, one 503 and one cut transfer retried: {requests:?}"
    );
    let resumed: Vec<_> = requests.iter().filter(|r| r.range.is_some()).collect();
    assert_eq!(
        resumed.len(),
        1,
        "the cut transfer resumed with a range: {requests:?}"
    );
    assert_eq!(
        requests[1].path, resumed[0].path,
        "the cut one is the one resumed: {requests:?}"
    );
    assert!(
        resumed[0]
            .range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{resumed:?}"
    );
}

#[tokio::test]
async fn redirects_to_another_host_drop_the_authorization() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let storage = FrontProxy::start(&registry.host, FrontOptions::default());
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            bearer: true,
            redirect_blobs_to: Some(storage.host.clone()),
            ..FrontOptions::default()
        },
    );
    let (_dir, store) = temp_store();
    let reference = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
    let pulled = client()
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);
    let at_front = front.blob_requests();
    assert!(
        !at_front.is_empty()
            && at_front
                .iter()
                .all(|r| r.authorization.as_deref() == Some("Bearer tok-1")),
        "{at_front:?}"
    );
    let at_storage = storage.blob_requests();
    assert_eq!(
        at_storage.len(),
        2,
        "config and layer followed the redirect: {at_storage:?}"
    );
    assert!(
        at_storage.iter().all(|r| r.authorization.is_none()),
        "no credentials sent to another host: {at_storage:?}"
    );
}

#[tokio::test]
async fn credentials_from_the_docker_config_env() {
    let registry = TestRegistry::start_with_htpasswd("carol", "pw-from-env");
    let (_src, built) = pushed_image(&registry);
    let (dir, store) = temp_store();
    let config = docker_config(dir.path(), &registry.host, "carol", "pw-from-env");
    // Safety: nextest runs each test in its own process; no other thread reads the environment.
    unsafe { std::env::set_var("DOCKER_CONFIG", config.parent().unwrap()) };
    let reference = Reference::parse(&registry.reference("test/busybox:v1")).unwrap();
    let client = Client::new(ClientOptions::default()).unwrap();
    let pulled = client
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);
}

#[tokio::test]
async fn docker_schema2_manifests_and_manifest_lists() {
    let registry = TestRegistry::start();
    let (src, src_store) = temp_store();
    let (index, amd64, arm64) = busybox_index(&src_store);
    let layout = layout_of(&src_store, &index, src.path(), "multi");
    registry.push_layout_with(
        &layout,
        "multi",
        "test/docker:v1",
        &["--all", "--format", "v2s2"],
    );
    let reference = Reference::parse(&registry.reference("test/docker:v1")).unwrap();
    let client = client();
    let listed = client.fetch_manifest(&reference).await.unwrap();
    assert_eq!(
        listed.media_type,
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );

    let (_dir, store) = temp_store();
    for (platform, built) in [("linux/amd64", &amd64), ("linux/arm64", &arm64)] {
        let pulled = client
            .pull(
                &reference,
                &platform.parse().unwrap(),
                &store,
                &report::Quiet,
            )
            .await
            .unwrap();
        assert_eq!(
            pulled.manifest.media_type.as_deref(),
            Some("application/vnd.docker.distribution.manifest.v2+json")
        );
        assert_eq!(
            pulled.manifest.config.media_type,
            "application/vnd.docker.container.image.v1+json"
        );
        assert_eq!(
            pulled.config.rootfs.diff_ids, built.config.rootfs.diff_ids,
            "{platform}"
        );
        let layer = &pulled.layers[0];
        assert_eq!(
            layer.media_type,
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(
            layer.digest, built.manifest.layers[0].digest,
            "the same gzip bytes, passed through"
        );
        assert!(store.has(&layer.digest));

        // Built on top, the layer keeps its bytes and gets OCI's media type.
        let rebuilt = cog::oci::assemble(
            &store,
            &pulled.config,
            &pulled.layers,
            std::collections::BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(
            rebuilt.manifest.layers[0].media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(rebuilt.manifest.layers[0].digest, layer.digest);
    }
}

#[tokio::test]
async fn a_broken_credential_helper_does_not_stop_anonymous_pulls() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            bearer: true,
            ..FrontOptions::default()
        },
    );
    let (dir, store) = temp_store();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"credsStore":"cog-test-missing-helper"}"#).unwrap();
    let reference = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
    let pulled = client_with_config(Some(&config))
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap();
    assert_same_image(&store, &pulled, &built);

    // A registry that insists on credentials names the helper that failed.
    let private = TestRegistry::start_with_htpasswd("dave", "pw");
    let reference = Reference::parse(&private.reference("test/busybox:v1")).unwrap();
    let err = client_with_config(Some(&config))
        .pull(&reference, &Platform::linux_amd64(), &store, &report::Quiet)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("credential helper docker-credential-cog-test-missing-helper failed"),
        "{err}"
    );
}

#[tokio::test]
async fn resolves_digests_and_checks_blobs_without_downloading() {
    let registry = TestRegistry::start();
    let (_src, built) = pushed_image(&registry);
    let front = FrontProxy::start(
        &registry.host,
        FrontOptions {
            bearer: true,
            ..FrontOptions::default()
        },
    );
    let client = client();
    let reference = Reference::parse(&format!("{}/test/busybox:v1", front.host)).unwrap();
    let (digest, media_type) = client.resolve(&reference).await.unwrap().unwrap();
    assert_eq!(digest, built.manifest_digest);
    assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");
    let absent = reference.with_tag("nope");
    assert_eq!(client.resolve(&absent).await.unwrap(), None);
    assert!(
        client
            .has_blob(&reference, &built.manifest.layers[0].digest)
            .await
            .unwrap()
    );
    assert!(
        !client
            .has_blob(&reference, &layers::Digest::of(b"absent"))
            .await
            .unwrap()
    );
    assert!(
        front.forwarded().iter().all(|r| r.starts_with("HEAD ")),
        "{:?}",
        front.forwarded()
    );
}
