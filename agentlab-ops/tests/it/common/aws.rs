//! Fixtures on moto: instances, a classic ELB, a target group, queued Cost Explorer results.
#![allow(dead_code)]

use aws_sdk_ec2::types::InstanceType;

/// The SDK config for moto (credentials from the environment `scripts/test-servers.sh` sets).
pub async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A running instance of `instance_type` with one root volume; its id.
pub async fn run_instance(sdk: &aws_config::SdkConfig, instance_type: &str) -> String {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let images = ec2
        .describe_images()
        .owners("amazon")
        .send()
        .await
        .expect("describe_images");
    let ami = images.images()[0].image_id().unwrap().to_string();
    let out = ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::from(instance_type))
        .min_count(1)
        .max_count(1)
        .block_device_mappings(
            aws_sdk_ec2::types::BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    aws_sdk_ec2::types::EbsBlockDevice::builder()
                        .volume_size(8)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("run_instances");
    out.instances()[0].instance_id().unwrap().to_string()
}

/// A classic ELB named `name` (HTTP :80).
pub async fn classic_lb(sdk: &aws_config::SdkConfig, name: &str) {
    let elb = aws_sdk_elasticloadbalancing::Client::new(sdk);
    elb.create_load_balancer()
        .load_balancer_name(name)
        .availability_zones("us-east-1a")
        .listeners(
            aws_sdk_elasticloadbalancing::types::Listener::builder()
                .protocol("HTTP")
                .load_balancer_port(80)
                .instance_port(8080)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create_load_balancer");
}

/// A target group named `name` in the default VPC with a `delay` s deregistration delay; its
/// ARN.
pub async fn target_group(sdk: &aws_config::SdkConfig, name: &str, delay: u32) -> String {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let vpcs = ec2.describe_vpcs().send().await.expect("describe_vpcs");
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_string();
    let v2 = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let tg = v2
        .create_target_group()
        .name(name)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .send()
        .await
        .expect("create_target_group");
    let arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    v2.modify_target_group_attributes()
        .target_group_arn(&arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value(delay.to_string())
                .build(),
        )
        .send()
        .await
        .expect("modify_target_group_attributes");
    arn
}

/// Queue one Cost Explorer answer on moto: `months` of `(start, end, [(service, amount)])`.
/// One month: start, end, `(service, amount)`s.
pub type Month<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

pub async fn queue_costs(endpoint: &str, months: &[Month<'_>]) {
    let results: Vec<serde_json::Value> = months
        .iter()
        .map(|(s, e, groups)| {
            let groups: Vec<serde_json::Value> = groups
                .iter()
                .map(|(svc, a)| serde_json::json!({"Keys": [svc], "Metrics": {"UnblendedCost": {"Amount": a, "Unit": "USD"}}}))
                .collect();
            serde_json::json!({"TimePeriod": {"Start": s, "End": e}, "Total": {}, "Groups": groups, "Estimated": false})
        })
        .collect();
    let body = serde_json::json!({"results": [{"ResultsByTime": results, "DimensionValueAttributes": []}]});
    let r = reqwest::Client::new()
        .post(format!(
            "{endpoint}/moto-api/static/ce/cost-and-usage-results"
        ))
        .json(&body)
        .send()
        .await
        .expect("queue cost results");
    assert!(
        r.status().is_success(),
        "moto refused the cost results: {}",
        r.status()
    );
}
