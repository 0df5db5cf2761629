#!/usr/bin/env bash
# Tests of clients/shell/smartcar-auth against the real agent and the real fake-smartcar.
#
#   bash clients/shell/test.sh
#
# Finds the binaries in .build/debug of the repository, or through SMARTCAR_AUTH_AGENT and FAKE_SMARTCAR.
# Needs bash 4, curl, and the coreutils; runs shellcheck on the scripts when it is installed.
# Ends with the line "N passed, N failed" and exits non-zero when a test failed.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
client=$here/smartcar-auth
agent=${SMARTCAR_AUTH_AGENT:-$repo/.build/debug/smartcar-auth-agent}
fake_bin=${FAKE_SMARTCAR:-$repo/.build/debug/fake-smartcar}
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
export NO_PROXY=$no_proxy

for bin in "$agent" "$fake_bin"; do
	if [[ ! -x $bin ]]; then
		echo "test.sh: $bin is missing: run 'swift build' first (or set SMARTCAR_AUTH_AGENT and FAKE_SMARTCAR)" >&2
		exit 1
	fi
done

# The client's own JSON reader, for reading the fake's answers here.
# shellcheck source-path=SCRIPTDIR source=smartcar-auth
source "$client"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/smartcar-auth-test.XXXXXX")
passed=0
failed=0
failures=()

cleanup() {
	if [[ -n ${FAKE_PID:-} ]]; then
		local fd=${FAKE[1]}
		exec {fd}>&-
		kill "$FAKE_PID" 2>/dev/null
		wait "$FAKE_PID" 2>/dev/null
	fi
	# The store, for the scan that ends a run of Tests/all.sh: no token value the fake issued may be in it.
	if [[ -n ${SMARTCAR_AUTH_TEST_EVIDENCE:-} ]]; then
		local file
		for file in "$tmp"/tokens.sqlite3 "$tmp"/tokens.sqlite3-{wal,shm,journal}; do
			[[ -f $file ]] || continue
			mkdir -p "$SMARTCAR_AUTH_TEST_EVIDENCE/stores/shell-client"
			cp "$file" "$SMARTCAR_AUTH_TEST_EVIDENCE/stores/shell-client/"
		done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# -- the fake Smartcar --------------------------------------------------------------------------------

coproc FAKE { "$fake_bin" 2>"$tmp/fake.err"; }
if ! IFS= read -r -t 30 fake_line <&"${FAKE[0]}"; then
	echo "test.sh: fake-smartcar printed no line: $(cat "$tmp/fake.err")" >&2
	exit 1
fi
origin='' client_id='' client_secret=''
if json_parse "$fake_line"; then
	json_scalar origin && origin=$J_VALUE
	json_scalar clientID && client_id=$J_VALUE
	json_scalar clientSecret && client_secret=$J_VALUE
fi
if [[ -z $origin || -z $client_id || -z $client_secret ]]; then
	echo "test.sh: unreadable line from fake-smartcar: $fake_line" >&2
	exit 1
fi

export SMARTCAR_AUTH_AGENT=$agent
export SMARTCAR_AUTH_AGENT_ARGS="--store $tmp/tokens.sqlite3"
export SMARTCAR_CLIENT_ID=$client_id SMARTCAR_CLIENT_SECRET=$client_secret
export SMARTCAR_REDIRECT_URI=http://localhost:8000/callback
export SMARTCAR_CONNECT_ORIGIN=$origin SMARTCAR_AUTH_ORIGIN=$origin SMARTCAR_IAM_ORIGIN=$origin SMARTCAR_API_ORIGIN=$origin
unset SMARTCAR_MODE SMARTCAR_AUTH_STORE

# fake_post PATH JSON: POSTs to a control endpoint of the fake; parses the answer.
fake_post() {
	local answer
	answer=$(curl -sS -X POST -H 'Content-Type: application/json' --data-binary "$2" "$origin$1")
	if ! json_parse "$answer"; then
		echo "test.sh: POST $1 failed: $answer" >&2
		return 1
	fi
}

# fake_count ENDPOINT: prints how many requests the fake's ENDPOINT has had.
fake_count() {
	json_parse "$(curl -sS "$origin/_fake/counts")" || return 1
	if json_scalar "$1"; then printf '%s\n' "$J_VALUE"; else printf '0\n'; fi
}

# mint USER: sets ACCESS and REFRESH to a token pair the fake issued for USER.
ACCESS='' REFRESH=''
mint() {
	fake_post /_fake/mint "{\"userID\":\"$1\"}" && json_scalar accessToken && ACCESS=$J_VALUE &&
		json_scalar refreshToken && REFRESH=$J_VALUE
}

# -- assertions ---------------------------------------------------------------------------------------

# run ARGS...: runs the client; sets OUT, ERR (its stdout and stderr, final newline dropped) and CODE.
run() {
	"$client" "$@" >"$tmp/out" 2>"$tmp/err"
	CODE=$?
	collect
}

# run_unset VARIABLE ARGS...: run with VARIABLE removed from the environment.
run_unset() {
	(
		unset "$1"
		"$client" "${@:2}" >"$tmp/out" 2>"$tmp/err"
		echo $? >"$tmp/code"
	)
	CODE=$(cat "$tmp/code")
	collect
}

collect() {
	OUT=$(cat "$tmp/out")
	ERR=$(cat "$tmp/err")
	OUT_LINES=$(wc -l <"$tmp/out")
	ERR_LINES=$(wc -l <"$tmp/err")
}

current=''
check() { # DESCRIPTION COMMAND...: one assertion of the current test
	if ! "${@:2}"; then
		failures+=("$current: $1")
		current_ok=''
	fi
}

begin() {
	current=$1
	current_ok=1
}

end() {
	if [[ -n $current_ok ]]; then
		passed=$((passed + 1))
		printf 'ok      %s\n' "$current"
	else
		failed=$((failed + 1))
		printf 'FAILED  %s\n' "$current"
		printf '        OUT=%s\n        ERR=%s\n        CODE=%s\n' "${OUT:-}" "${ERR:-}" "${CODE:-}"
	fi
}

is() { [[ $1 == "$2" ]]; }
isnt() { [[ $1 != "$2" ]]; }
fails() { ! "$@"; }
has() { [[ $1 == *"$2"* ]]; }
matches() { [[ $1 =~ $2 ]]; }

# expect_error CODE KIND: the last run failed with exit CODE, one stderr line naming KIND, no stdout.
expect_error() {
	check "exit code $1" is "$CODE" "$1"
	check "nothing on stdout" is "$OUT" ""
	check "one line on stderr" is "$ERR_LINES" 1
	check "stderr names $2" has "$ERR" "smartcar-auth: $2: "
}

# -- tests that need no agent -------------------------------------------------------------------------

begin "json_string escapes quotes, backslashes and control characters"
json_string $'q"b\\n\nt\tc\x01\x1f/é&'
check "escaped" is "$REPLY" '"q\"b\\n\nt\tc\u0001\u001f/é&"'
end

begin "json_parse decodes escapes, \\/ and \\u (surrogate pairs too)"
json_parse '{"a":"x \"y\" \\ z\/w \u0041\u00e9\u20ac\ud83d\ude97","n":[1,-2.5e3,true,null,{}]}'
check "parsed" is "$?" 0
json_get a
check "string" is "$J_VALUE" 'x "y" \ z/w Aé€🚗'
json_get n.1
check "number" is "$J_VALUE" "-2.5e3"
json_get n.2
check "boolean" is "$J_TYPE$J_VALUE" "btrue"
json_get n.3
check "null" is "$J_TYPE" "z"
end

begin "json_parse refuses broken JSON"
for bad in '{"a":"x}' '{"a":1,}' '{"a" 1}' '[1 2]' '{"a":tru}' '{"a":"\q"}'; do
	check "refuses $bad" fails json_parse "$bad"
done
end

begin "--help documents the exit codes; --version"
run --help
check "exit 0" is "$CODE" 0
check "lists unknownKey's code" matches "$OUT" "19 +unknownKey"
check "lists reauthRequired's code" matches "$OUT" "13 +reauthRequired"
run --version
check "version" matches "$OUT" "^smartcar-auth [0-9]+\.[0-9]+\.[0-9]+$"
end

begin "usage errors exit 2 with one line"
for args in "" "bogus" "token" "token a b" "token a --min-validity x" "connect-url --nope" "store k --access-token a" \
	"connect" "connect a --timeout x" "connect a --state s"; do
	# shellcheck disable=SC2086 # word splitting of the argument list is the point
	run $args
	check "'$args' exits 2" is "$CODE" 2
	check "'$args' says one line" is "$ERR_LINES" 1
	check "'$args' prints nothing" is "$OUT" ""
done
end

begin "a missing agent exits 3"
SMARTCAR_AUTH_AGENT=$tmp/nowhere run ping
check "exit 3" is "$CODE" 3
check "one line" is "$ERR_LINES" 1
check "names the variable" has "$ERR" SMARTCAR_AUTH_AGENT
end

begin "an agent that dies without answering exits 3 with its last words"
printf '#!/bin/sh\necho "agent: cannot start: disk on fire" >&2\nexit 5\n' >"$tmp/dying-agent"
chmod +x "$tmp/dying-agent"
SMARTCAR_AUTH_AGENT=$tmp/dying-agent run token k
check "exit 3" is "$CODE" 3
check "one line" is "$ERR_LINES" 1
check "status and last stderr line" has "$ERR" "status 5 without answering: agent: cannot start: disk on fire"
check "nothing on stdout" is "$OUT" ""
end

# -- tests against the agent and the fake -------------------------------------------------------------

begin "ping and status"
run ping
check "ping" is "$CODE/$OUT" "0/ok"
run status
check "status exit 0" is "$CODE" 0
check "status names the version" matches "$OUT" $'(^|\n)version: '
end

begin "token for a stored key prints only the token"
mint user-stored
run store car-1 --access-token "$ACCESS" --refresh-token "$REFRESH" --expires-at 2099-01-01T00:00:00Z
check "store prints the key" is "$CODE/$OUT" "0/car-1"
run token car-1
check "exit 0" is "$CODE" 0
check "stdout is the token" is "$OUT" "$ACCESS"
check "one line" is "$OUT_LINES" 1
check "stderr empty" is "$ERR" ""
end

begin "curl -H \"Authorization: Bearer \$(smartcar-auth token KEY)\" works"
user=$(curl -sS -H "Authorization: Bearer $("$client" token car-1)" "$origin/v2.0/user")
json_parse "$user" && json_scalar id
check "the fake knows the user" is "$J_VALUE" user-stored
end

begin "token for an unknown key: unknownKey, exit 19, one line, nothing on stdout"
run token no-such-key
expect_error 19 unknownKey
check "offers a Connect URL" has "$ERR" "(connect again: $origin/oauth/authorize?"
end

begin "--json prints the whole result"
run --json token car-1
check "exit 0" is "$CODE" 0
json_parse "$OUT"
check "is JSON" is "$?" 0
json_get key
check "key" is "$J_VALUE" car-1
json_get accessToken
check "accessToken" is "$J_VALUE" "$ACCESS"
json_get expiresIn
check "expiresIn is a number" is "$J_TYPE" n
check "no refresh token" fails json_get refreshToken
run token car-1 --json
check "--json after the command" is "${OUT:0:1}" "{"
end

begin "an expired key is refreshed once"
mint user-expired
run store expired-car --access-token "$ACCESS" --refresh-token "$REFRESH" --expires-at 2020-01-01T00:00:00Z
before=$(fake_count token)
run token expired-car
check "exit 0" is "$CODE" 0
check "a new token" matches "$OUT" '^[^[:space:]]+$'
check "not the old one" isnt "$OUT" "$ACCESS"
check "one refresh" is "$(fake_count token)" $((before + 1))
new_token=$OUT
run token expired-car
check "then answered from the store" is "$OUT" "$new_token"
check "no second refresh" is "$(fake_count token)" $((before + 1))
run token expired-car --force
check "--force refreshes" is "$(fake_count token)" $((before + 2))
check "--force gives a new token" isnt "$OUT" "$new_token"
run token expired-car --min-validity 3600
check "--min-validity 3600 is satisfied" is "$(fake_count token)" $((before + 2))
end

begin "token --rejected: the current token is refreshed once, a stale one costs no refresh"
mint user-rejected
run store rejected-car --access-token "$ACCESS" --refresh-token "$REFRESH" --expires-at 2099-01-01T00:00:00Z
before=$(fake_count token)
run token rejected-car --rejected "$ACCESS"
check "exit 0" is "$CODE" 0
check "a new token" isnt "$OUT" "$ACCESS"
check "one refresh" is "$(fake_count token)" $((before + 1))
replaced=$OUT
run token rejected-car --rejected="$ACCESS"
check "the stale token gets the new one" is "$CODE/$OUT" "0/$replaced"
check "no second refresh" is "$(fake_count token)" $((before + 1))
run token rejected-car --rejected
check "--rejected needs a value" is "$CODE" 2
end

begin "the agent installed beside the client is found before PATH"
mkdir -p "$tmp/bin"
cp "$client" "$tmp/bin/smartcar-auth"
printf '#!/bin/sh\necho "agent: the one beside the client" >&2\nexit 7\n' >"$tmp/bin/smartcar-auth-agent"
chmod +x "$tmp/bin/smartcar-auth" "$tmp/bin/smartcar-auth-agent"
(
	unset SMARTCAR_AUTH_AGENT
	PATH=/usr/bin:/bin "$tmp/bin/smartcar-auth" ping >"$tmp/out" 2>"$tmp/err"
	echo $? >"$tmp/code"
)
CODE=$(cat "$tmp/code")
collect
check "ran the agent beside it" has "$ERR" "status 7 without answering: agent: the one beside the client"
end

begin "app-token"
run app-token
check "exit 0" is "$CODE" 0
check "a token" matches "$OUT" '^[^[:space:]]+$'
run --json app-token --force
json_parse "$OUT" && json_get tokenType
check "tokenType" is "$J_VALUE" Bearer
end

begin "connect-url encodes every option"
run connect-url --scope read_odometer --scope required:read_vin --state 'a b&c=d' --make TESLA --mode test \
	--force-prompt --single-select-vin 5YJSA1E14FF101307 --user u-1 --flag country:DE --flag b:true \
	--redirect-uri https://example.com/cb
check "exit 0" is "$CODE" 0
check "on the fake" has "$OUT" "$origin/oauth/authorize?response_type=code&client_id=$client_id&"
for part in approval_prompt=force mode=test redirect_uri=https%3A%2F%2Fexample.com%2Fcb \
	scope=read_odometer+required%3Aread_vin state=a+b%26c%3Dd make=TESLA single_select_vin=5YJSA1E14FF101307 \
	user=u-1; do
	check "has $part" has "$OUT" "$part"
done
# (A JSON object has no order: the agent may emit the flags in any.)
check "has both flags" matches "$OUT" '&flags=(country%3ADE\+b%3Atrue|b%3Atrue\+country%3ADE)(&|$)'
run --json connect-url --state s-42
json_parse "$OUT" && json_get state
check "--json has the state" is "$J_VALUE" s-42
end

begin "exchange CODE stores the tokens (default key: the user id)"
fake_post /_fake/code '{"redirectURI":"http://localhost:8000/callback","userID":"user-exchanged"}' && json_scalar code
run exchange "$J_VALUE"
check "prints the user id" is "$CODE/$OUT" "0/user-exchanged"
run token user-exchanged
check "token for it" is "$CODE" 0
fake_post /_fake/code '{"redirectURI":"http://localhost:8000/callback","userID":"user-2"}' && json_scalar code
run exchange "$J_VALUE" --key 'my car'
check "--key" is "$CODE/$OUT" "0/my car"
end

begin "exchange of a bad code: invalidGrant, exit 12"
run exchange not-a-code
expect_error 12 invalidGrant
end

begin "redirect in a later invocation than connect-url: the state is in the store, accepted once"
run connect-url --key from-connect
url=$OUT
redirect=$(curl -sS -o /dev/null -w '%{redirect_url}' "$url")
check "Connect redirects with a code" has "$redirect" "http://localhost:8000/callback?code="
run redirect "$redirect"
check "redirect stores under the connect-url's key" is "$CODE/$OUT" "0/from-connect"
run token from-connect
check "token for it" is "$CODE" 0
run redirect "$redirect"
expect_error 17 stateMismatch
end

begin "keys with spaces, quotes, backslashes and non-ASCII survive the round trip"
key='my "odd" \ key/é'
mint user-odd
run store "$key" --access-token "$ACCESS" --refresh-token "$REFRESH" --expires-at 2099-01-01T00:00:00Z
check "store prints the key" is "$OUT" "$key"
run token "$key"
check "token" is "$CODE/$OUT" "0/$ACCESS"
run list
check "list has it" has "$OUT" "$key"$'\tvalid\t2099-01-01T00:00:00Z'
run forget "$key"
check "forget" is "$CODE/$OUT" "0/forgot $key"
run forget "$key"
check "forget again" is "$CODE/$OUT" "0/no tokens were stored for $key"
end

begin "error messages are decoded: quotes, backslashes, non-ASCII"
run token 'quote " backslash \ slash / é'
expect_error 19 unknownKey
check "the key in the message" has "$ERR" 'quote " backslash \ slash / é'
end

begin "a key with a line break: invalidParams (exit 30), on one line"
run token $'line\nbreak'
expect_error 30 invalidParams
end

begin "list: one line per key with its state"
run list
check "exit 0" is "$CODE" 0
check "car-1 valid" has "$OUT" $'car-1\tvalid\t2099-01-01T00:00:00Z'
mint user-list
run store list-expired --access-token "$ACCESS" --refresh-token "$REFRESH" --expires-at 2020-01-01T00:00:00Z
run list
check "expired" has "$OUT" $'list-expired\texpired\t2020-01-01T00:00:00Z'
run --json list
json_parse "$OUT" && json_get tokens
check "--json: tokens array" is "$J_TYPE" a
end

begin "store reads tokens given as - from stdin"
mint user-stdin
"$client" store stdin-car --access-token - --refresh-token - --expires-at 2099-01-01T00:00:00Z \
	>"$tmp/out" 2>"$tmp/err" <<<"$ACCESS"$'\n'"$REFRESH"
check "stored" is "$?/$(cat "$tmp/out")" "0/stdin-car"
run token stdin-car
check "token" is "$OUT" "$ACCESS"
end

begin "a rejected refresh token: reauthRequired, exit 13, with a Connect URL"
run store reauth-car --access-token never-issued-access --refresh-token never-issued-refresh --expires-at 2020-01-01T00:00:00Z
run token reauth-car
expect_error 13 reauthRequired
check "offers a Connect URL" has "$ERR" "(connect again: $origin/oauth/authorize?"
end

begin "configurationError (no client id): exit 10"
run_unset SMARTCAR_CLIENT_ID connect-url
expect_error 10 configurationError
end

begin "invalidClient (wrong secret): exit 11"
# A store of its own: the shared one is sealed with the right secret, and an agent with another refuses to open it.
SMARTCAR_CLIENT_SECRET=wrong-secret SMARTCAR_AUTH_AGENT_ARGS="--store memory" run app-token --force
expect_error 11 invalidClient
end

begin "rateLimited: exit 14, with how long to wait"
mint user-limited
run store limited-car --access-token "$ACCESS" --refresh-token "$REFRESH" --expires-at 2020-01-01T00:00:00Z
fake_post /_fake/fault '{"fault":{"kind":"rateLimited","retryAfter":"7"},"endpoint":"token","times":10}'
SMARTCAR_AUTH_AGENT_ARGS="$SMARTCAR_AUTH_AGENT_ARGS --request-timeout 5" run token limited-car
fake_post /_fake/reset '{}'
expect_error 14 rateLimited
check "retry after 7 s" has "$ERR" "retry after 7 s"
check "said once" fails has "${ERR#*retry after 7 s}" "retry after 7 s"
end

begin "upstreamUnavailable (5xx): exit 15"
fake_post /_fake/fault '{"fault":{"kind":"status","status":503,"body":"{}"},"endpoint":"token","times":100}'
SMARTCAR_AUTH_AGENT_ARGS="$SMARTCAR_AUTH_AGENT_ARGS --request-timeout 5" run token limited-car
fake_post /_fake/reset '{}'
expect_error 15 upstreamUnavailable
run token limited-car
check "then refreshed once Smartcar is back" is "$CODE" 0
end

# A browser for connect: $BROWSER gets the Connect URL; this one follows its redirect with curl and keeps
# the page. With FAKE_ERROR set, the owner denies access.
cat >"$tmp/browser" <<'EOF'
#!/usr/bin/env bash
curl -sS -L -o "$PAGE" "$1${FAKE_ERROR:+&fake_error=$FAKE_ERROR}"
EOF
chmod +x "$tmp/browser"
export PAGE=$tmp/page

begin "connect against --sandbox: the URL on stderr, opened with \$BROWSER; prints the key"
rm -f "$PAGE"
SMARTCAR_AUTH_AGENT_ARGS=--sandbox BROWSER=$tmp/browser run connect my-car --scope read_odometer \
	--redirect-uri http://127.0.0.1:0/callback
check "exit 0" is "$CODE" 0
check "prints the key" is "$OUT" my-car
check "shows the Connect URL" matches "$ERR" "open this URL in a browser to connect the vehicle:"$'\n'"  http://127\.0\.0\.1:[0-9]+/oauth/authorize\?"
check "names the redirect it waits for" matches "$ERR" "waiting for Connect to redirect to http://127\.0\.0\.1:[0-9]+/callback"
check "the browser saw the page" has "$(cat "$PAGE")" "Connected: the vehicle&#39;s access is stored under the key &#39;my-car&#39;"
end

begin "connect on the store: the key is usable afterwards"
BROWSER=$tmp/browser run connect stored-car --redirect-uri http://localhost:0/cb
check "exit 0" is "$CODE/$OUT" 0/stored-car
run token stored-car
check "token" is "$CODE" 0
end

begin "connect, Connect denies access: connectError, exit 18"
FAKE_ERROR=access_denied BROWSER=$tmp/browser run connect denied-car --redirect-uri http://127.0.0.1:0/callback
check "exit 18" is "$CODE" 18
check "says why" has "$ERR" "smartcar-auth: connectError: Smartcar Connect returned access_denied"
check "the browser saw why" has "$(cat "$PAGE")" "Not connected: Smartcar Connect returned access_denied"
end

begin "connect on a port another program holds: portUnavailable, exit 21"
BROWSER=$tmp/browser run connect busy-car --redirect-uri "http://127.0.0.1:${origin##*:}/callback"
expect_error 21 portUnavailable
end

begin "connect whose redirect never comes: connectTimeout, exit 22"
BROWSER=true run connect late-car --redirect-uri http://127.0.0.1:0/callback --timeout 1
check "exit 22" is "$CODE" 22
check "says so" matches "$ERR" "smartcar-auth: connectTimeout: no redirect came to http://127\.0\.0\.1:[0-9]+/callback within 1 s"
end

begin "shellcheck finds nothing"
if command -v shellcheck >/dev/null; then
	check "smartcar-auth" shellcheck "$client"
	check "test.sh" shellcheck -x "$here/test.sh"
else
	printf 'skip    shellcheck is not installed\n'
fi
end

printf '\n'
for f in ${failures[@]+"${failures[@]}"}; do
	printf 'failed: %s\n' "$f"
done
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
