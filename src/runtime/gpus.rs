//! `--gpus`, as `docker run --gpus` takes it, and what each engine is given for it: Docker's
//! own `--gpus` (a device request through its API), podman's CDI devices
//! (`--device nvidia.com/gpu=all`, the NVIDIA container toolkit's `nvidia-ctk cdi generate`
//! names).

/// Which GPUs a container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuRequest {
    /// `all`, `count=all`.
    All,
    /// `N`, `count=N`: the first N.
    Count(u32),
    /// `device=0,1`, `device=GPU-<uuid>`.
    Devices(Vec<String>),
}

/// The CDI vendor and class of NVIDIA's GPUs (`nvidia-ctk cdi generate`).
pub const CDI_KIND: &str = "nvidia.com/gpu";

impl GpuRequest {
    /// Parses Docker's forms: `all`, `N`, `count=N|all`, `device=ID[,ID...]` (also quoted, as
    /// Docker's docs write `'"device=0,1"'`). Docker's `driver=` and `capabilities=` are refused:
    /// every engine here is given NVIDIA GPUs with all capabilities.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim().trim_matches('"').trim_matches('\'').trim();
        if value.is_empty() {
            return Err("empty (expected all, a number, or device=ID[,ID])".into());
        }
        if value == "all" {
            return Ok(Self::All);
        }
        if let Ok(n) = value.parse::<u32>() {
            return count(n);
        }
        if let Some(rest) = value.strip_prefix("count=") {
            if rest == "all" {
                return Ok(Self::All);
            }
            return rest
                .parse::<u32>()
                .map_err(|_| format!("count={rest}: expected a number or all"))
                .and_then(count);
        }
        if let Some(rest) = value.strip_prefix("device=") {
            let ids: Vec<String> = rest
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
            if ids.is_empty() {
                return Err("device= names no device".into());
            }
            if let Some(bad) = ids.iter().find(|id| {
                !id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
            }) {
                return Err(format!("device {bad:?}: not a GPU index or UUID"));
            }
            return Ok(Self::Devices(ids));
        }
        let key = value.split('=').next().unwrap_or(value);
        Err(format!(
            "{key}: cog-rs takes all, a number, count=N or device=ID[,ID] (Docker's driver= and capabilities= are not supported)"
        ))
    }

    /// The value of `docker run --gpus`.
    pub fn docker_arg(&self) -> String {
        match self {
            Self::All => "all".into(),
            Self::Count(n) => n.to_string(),
            Self::Devices(ids) => format!("\"device={}\"", ids.join(",")),
        }
    }

    /// Docker's API `HostConfig.DeviceRequests` for this request (what `docker run --gpus`
    /// sends).
    pub fn device_requests(&self) -> serde_json::Value {
        let (count, ids): (i64, Vec<String>) = match self {
            Self::All => (-1, Vec::new()),
            Self::Count(n) => (i64::from(*n), Vec::new()),
            Self::Devices(ids) => (0, ids.clone()),
        };
        let mut request = serde_json::json!({
            "Driver": "", "Count": count, "Capabilities": [["gpu"]],
        });
        if !ids.is_empty() {
            request["DeviceIDs"] = serde_json::json!(ids);
        }
        serde_json::json!([request])
    }

    /// podman's CDI device names: `nvidia.com/gpu=all`, one per index or UUID, or the first N.
    pub fn cdi_devices(&self) -> Vec<String> {
        match self {
            Self::All => vec![format!("{CDI_KIND}=all")],
            Self::Count(n) => (0..*n).map(|i| format!("{CDI_KIND}={i}")).collect(),
            Self::Devices(ids) => ids.iter().map(|id| format!("{CDI_KIND}={id}")).collect(),
        }
    }
}

fn count(n: u32) -> Result<GpuRequest, String> {
    if n == 0 {
        Err("0 GPUs: leave --gpus out to run without".into())
    } else {
        Ok(GpuRequest::Count(n))
    }
}

impl std::fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Count(n) => write!(f, "{n}"),
            Self::Devices(ids) => write!(f, "device={}", ids.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_forms_parse() {
        assert_eq!(GpuRequest::parse("all"), Ok(GpuRequest::All));
        assert_eq!(GpuRequest::parse("count=all"), Ok(GpuRequest::All));
        assert_eq!(GpuRequest::parse("2"), Ok(GpuRequest::Count(2)));
        assert_eq!(GpuRequest::parse("count=1"), Ok(GpuRequest::Count(1)));
        let two = GpuRequest::Devices(vec!["0".into(), "2".into()]);
        assert_eq!(GpuRequest::parse("device=0,2"), Ok(two.clone()));
        assert_eq!(GpuRequest::parse("\"device=0,2\""), Ok(two.clone()));
        assert_eq!(two.docker_arg(), "\"device=0,2\"");
        assert_eq!(
            two.cdi_devices(),
            vec!["nvidia.com/gpu=0", "nvidia.com/gpu=2"]
        );
        assert_eq!(
            GpuRequest::Count(2).cdi_devices(),
            vec!["nvidia.com/gpu=0", "nvidia.com/gpu=1"]
        );
        assert_eq!(GpuRequest::All.cdi_devices(), vec!["nvidia.com/gpu=all"]);
        for bad in [
            "",
            "0",
            "count=x",
            "device=",
            "driver=nvidia",
            "capabilities=utility",
        ] {
            assert!(GpuRequest::parse(bad).is_err(), "{bad}");
        }
        assert!(
            GpuRequest::parse("capabilities=compute")
                .unwrap_err()
                .contains("capabilities")
        );
    }

    #[test]
    fn device_requests_are_what_docker_run_sends() {
        assert_eq!(
            GpuRequest::All.device_requests(),
            serde_json::json!([{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}])
        );
        assert_eq!(
            GpuRequest::Devices(vec!["GPU-abc".into()]).device_requests(),
            serde_json::json!([{"Driver": "", "Count": 0, "Capabilities": [["gpu"]], "DeviceIDs": ["GPU-abc"]}])
        );
    }
}
