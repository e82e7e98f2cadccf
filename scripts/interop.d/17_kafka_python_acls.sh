#!/usr/bin/env bash
# Interop: kafka-python's KafkaAdminClient create_acls / describe_acls / delete_acls
# against `tagpipe broker` with `authorizer: acl`, over SASL_PLAINTEXT (SCRAM-SHA-256) as
# the super user; a user without an ACL is refused a produce (TopicAuthorizationFailed)
# and allowed once the ACL is there, refused again once it is deleted.
# Needs Debian's python3-kafka (.ci/run installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${KAFKA_PYTHON:-/usr/bin/python3}
"$PY" -c 'import kafka' 2>/dev/null || { echo "kafka-python is not installed for $PY (apt-get install python3-kafka)"; exit 1; }
. scripts/interop.d/lib/broker.sh
# The broker's settings (values with spaces: exported rather than BROKER_ENV).
export TAGPIPE_BROKER_LISTENERS='[{name: INTERNAL, listen: "127.0.0.1:0"}, {name: SASL_PLAINTEXT, listen: "127.0.0.1:0"}]'
export TAGPIPE_BROKER_SASL_ENABLED_MECHANISMS='[SCRAM-SHA-256]'
export TAGPIPE_BROKER_SASL_USERS='{admin: admin-secret, alice: alice-secret}'
export TAGPIPE_BROKER_AUTHORIZER=acl TAGPIPE_BROKER_SUPER_USERS='[User:admin]'
start_broker
sasl=$(sed -n 's/.*msg="broker listening".* listener=SASL_PLAINTEXT .* addr=\([^ ]*\).*/\1/p' "$tmp/broker.log" | head -1)
[ -n "$sasl" ] || fail "no SASL_PLAINTEXT listener"

"$PY" - "$sasl" <<'PYEOF' || fail "kafka-python ACLs"
import sys, time
from kafka import KafkaProducer
from kafka.admin import (KafkaAdminClient, NewTopic, ACL, ACLFilter, ACLOperation, ACLPermissionType,
                         ResourcePattern, ResourcePatternFilter, ResourceType, ACLResourcePatternType)
from kafka.errors import TopicAuthorizationFailedError, KafkaTimeoutError

addr = sys.argv[1]
def sec(user):
    return dict(bootstrap_servers=addr, security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                sasl_plain_username=user, sasl_plain_password=user + "-secret")

admin = KafkaAdminClient(**sec("admin"))
admin.create_topics([NewTopic("py-acl", 1, 1)])

def produce():
    p = KafkaProducer(acks="all", max_block_ms=5000, retries=0, **sec("alice"))
    try:
        p.send("py-acl", b"v").get(timeout=10)
        return None
    except Exception as e:  # kafka-python raises the metadata error on send
        return e
    finally:
        p.close(timeout=5)

err = produce()
assert isinstance(err, (TopicAuthorizationFailedError, KafkaTimeoutError)), "produce without ACL: %r" % (err,)

acl = ACL(principal="User:alice", host="*", operation=ACLOperation.WRITE, permission_type=ACLPermissionType.ALLOW,
          resource_pattern=ResourcePattern(ResourceType.TOPIC, "py-acl"))
res = admin.create_acls([acl])
assert len(res["succeeded"]) == 1 and not res["failed"], res

flt = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
acls, e = admin.describe_acls(flt)
got = [(a.principal, a.resource_pattern.resource_type, a.resource_pattern.resource_name, a.operation, a.permission_type) for a in acls]
assert got == [("User:alice", ResourceType.TOPIC, "py-acl", ACLOperation.WRITE, ACLPermissionType.ALLOW)], (got, e)

err = produce()
assert err is None, "produce with WRITE: %r" % (err,)

deleted = admin.delete_acls([flt])
matches = deleted[0][1]
assert len(matches) == 1 and matches[0][0].resource_pattern.resource_name == "py-acl", deleted
acls, e = admin.describe_acls(flt)
assert acls == [], acls

err = produce()
assert err is not None, "produce after the ACL was deleted succeeded"
admin.close()
print("kafka-python ACLs ok")
PYEOF
out=$(env -u TAGPIPE_BROKER_LISTENERS -u TAGPIPE_BROKER_SASL_USERS "$BIN" --data-dir "$tmp/data" acls list --bootstrap-server "$addr" 2>&1 || true)
echo "$out" | grep -q CLUSTER_AUTHORIZATION_FAILED || fail "ANONYMOUS acls list: $out"
echo "kafka-python ACLs: ok"
