#!/usr/bin/env python3
import datetime, sys
import agentlab_ops

env = agentlab_ops.Environment.discover()           # $AGENTLAB_OPS_CONFIG or ./agentlab-ops.toml
night = datetime.date.today() - datetime.timedelta(days=1)
report = agentlab_ops.verify_backups(env, date=night, sample="5%", seed=night.toordinal())
lines = [f"Backups of {night}: {report.verdict.upper()}"]
lines += [f"• {e.message} (observed {e.observed})" for e in report.escalations]
lines += [f"• {f.subject}: {f.message}" for f in report.findings[:10]]
try:
    env.notify("\n".join(lines))
except agentlab_ops.AgentlabOpsError as e:            # a failed post never hides the verdict
    print(f"could not post to Slack: {e}", file=sys.stderr)
print(report)
sys.exit(report.exit_code)
