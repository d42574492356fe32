// LiveKit's own JS client asking a token endpoint, as a browser app's useSession would:
// a first fetch, the same fetch again (served from the client's cache), then a forced refetch
// (what useSession does after a disconnect). Prints what each token says, as JSON, on stdout.
//
// Usage: node token_source.mjs <endpoint url> <Authorization header value>
// No browser globals are needed: TokenSource uses only fetch, which Node 20 has.
import { TokenSource, decodeTokenPayload } from 'livekit-client';

const [url, authorization] = process.argv.slice(2);
const source = TokenSource.endpoint(url, { headers: { Authorization: authorization } });
// No participantIdentity: the gateway takes it from the end user's token in the header.
const options = {
  participantName: 'Ada',
  agentName: 'pm-agent',
  agentMetadata: '{"topic":"billing"}',
};

function describe(response) {
  const claims = decodeTokenPayload(response.participantToken);
  return {
    serverUrl: response.serverUrl,
    identity: claims.sub,
    name: claims.name,
    room: claims.video?.room,
    roomJoin: claims.video?.roomJoin,
    roomConfigName: claims.roomConfig?.name,
    agents: (claims.roomConfig?.agents ?? []).map((agent) => ({
      agentName: agent.agentName,
      metadata: agent.metadata,
    })),
    ttlSeconds: claims.exp - claims.nbf,
  };
}

const first = await source.fetch(options);
const cached = await source.fetch(options);
const refetched = await source.fetch(options, true);
console.log(JSON.stringify({
  first: describe(first),
  cached: describe(cached),
  refetched: describe(refetched),
}));
