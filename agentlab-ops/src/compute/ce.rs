//! [`CostExplorer`]: the spec's `aws ce get-cost-and-usage`, monthly, grouped by service, every
//! page read (a month's groups may span pages).

use std::collections::BTreeMap;

use aws_sdk_costexplorer::types::{DateInterval, GroupDefinition, GroupDefinitionType};
use chrono::NaiveDate;

use super::aws::map;
use super::{CostPeriod, CostSource};
use crate::config::AwsConfig;
use crate::error::{Error, ErrorKind, Result};

/// Cost Explorer.
#[derive(Debug, Clone)]
pub struct CostExplorer {
    client: aws_sdk_costexplorer::Client,
    place: String,
}

impl CostExplorer {
    /// A client from the shared SDK config.
    pub fn new(sdk: &aws_config::SdkConfig, aws: &AwsConfig) -> Self {
        let place = match &aws.endpoint_url {
            Some(u) => format!("Cost Explorer at {u}"),
            None => "Cost Explorer".to_string(),
        };
        CostExplorer {
            client: aws_sdk_costexplorer::Client::new(sdk),
            place,
        }
    }
}

fn bad(place: &str, msg: String) -> Error {
    Error::new(ErrorKind::InvalidResponse, format!("{place}: {msg}")).with_operation("cost.monthly")
}

fn amount(
    place: &str,
    what: &str,
    v: Option<&aws_sdk_costexplorer::types::MetricValue>,
) -> Result<(f64, String)> {
    let Some(v) = v else {
        return Ok((0.0, String::new()));
    };
    let a = v.amount().unwrap_or("0");
    let x: f64 = a
        .parse()
        .ok()
        .filter(|x: &f64| x.is_finite())
        .ok_or_else(|| bad(place, format!("{what}: amount {a:?} is not a number")))?;
    Ok((x, v.unit().unwrap_or("").to_string()))
}

impl CostExplorer {
    /// Merge one result (one month, maybe part of its groups) into `months`.
    fn merge(
        &self,
        months: &mut BTreeMap<NaiveDate, CostPeriod>,
        r: &aws_sdk_costexplorer::types::ResultByTime,
        metric: &str,
    ) -> Result<()> {
        let p = &self.place;
        let tp = r
            .time_period()
            .ok_or_else(|| bad(p, "a result without its time period".into()))?;
        let day = |s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| bad(p, format!("time period date {s:?} is not YYYY-MM-DD")))
        };
        let (start, end) = (day(tp.start())?, day(tp.end())?);
        let m = months.entry(start).or_insert_with(|| CostPeriod {
            start,
            end,
            total: 0.0,
            unit: String::new(),
            by_service: BTreeMap::new(),
            estimated: r.estimated(),
        });
        for g in r.groups() {
            let svc = g.keys().first().cloned().unwrap_or_else(|| "(none)".into());
            let (x, unit) = amount(p, &svc, g.metrics().and_then(|m| m.get(metric)))?;
            *m.by_service.entry(svc).or_default() += x;
            if m.unit.is_empty() {
                m.unit = unit;
            }
        }
        if r.groups().is_empty() {
            let (x, unit) = amount(p, "total", r.total().and_then(|t| t.get(metric)))?;
            m.total += x;
            if m.unit.is_empty() {
                m.unit = unit;
            }
        } else {
            m.total = m.by_service.values().sum();
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl CostSource for CostExplorer {
    async fn monthly(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        metric: &str,
    ) -> Result<Vec<CostPeriod>> {
        let period = DateInterval::builder()
            .start(start.format("%Y-%m-%d").to_string())
            .end(end.format("%Y-%m-%d").to_string())
            .build()
            .map_err(|e| Error::config(format!("cost period: {e}")))?;
        let by_service = GroupDefinition::builder()
            .r#type(GroupDefinitionType::Dimension)
            .key("SERVICE")
            .build();
        let mut months = BTreeMap::new();
        let mut token: Option<String> = None;
        for _page in 0..1000 {
            let out = self
                .client
                .get_cost_and_usage()
                .time_period(period.clone())
                .granularity(aws_sdk_costexplorer::types::Granularity::Monthly)
                .metrics(metric)
                .group_by(by_service.clone())
                .set_next_page_token(token.clone())
                .send()
                .await
                .map_err(|e| map(e, "cost.monthly", &self.place))?;
            for r in out.results_by_time() {
                self.merge(&mut months, r, metric)?;
            }
            token = out.next_page_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(months.into_values().collect())
    }
}
