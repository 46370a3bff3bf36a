"""Every schedule expression of the AWS template (EventBridge rules and
Scheduler schedules) must be a valid AWS cron(...) or rate(...) expression:
the six cron fields by aws-cron-expression-validator, rates by AWS's rule
(a positive whole number, then minute/hour/day for 1 and minutes/hours/days
otherwise). Exits 1 naming each invalid one; prints what it checked."""

import json
import re
import sys

from aws_cron_expression_validator.validator import AWSCronExpressionValidator

path = sys.argv[1] if len(sys.argv) > 1 else "infra/aws/template.json"
with open(path, encoding="utf-8") as handle:
    template = json.load(handle)

checked, bad = 0, []
for name, resource in template["Resources"].items():
    expression = resource.get("Properties", {}).get("ScheduleExpression")
    if expression is None:
        continue
    checked += 1
    cron = re.fullmatch(r"cron\((.*)\)", expression)
    rate = re.fullmatch(r"rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)", expression)
    if cron:
        try:
            AWSCronExpressionValidator.validate(cron.group(1))
        except Exception as error:  # the validator raises ValueError subclasses
            bad.append(f"{name}: {expression!r}: {error}")
    elif rate:
        singular = rate.group(1) == "1"
        if singular != (not rate.group(2).endswith("s")):
            bad.append(f"{name}: {expression!r}: use minute/hour/day for 1, minutes/hours/days otherwise")
    else:
        bad.append(f"{name}: {expression!r}: expected cron(...) or rate(N unit)")

for line in bad:
    print(f"invalid schedule expression: {line}")
print(f"{path}: {checked} schedule expressions checked, {len(bad)} invalid")
if checked == 0 or bad:
    sys.exit(1)
