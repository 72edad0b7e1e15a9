// The portal reads the same public JSON API that users script against.

export class ApiError extends Error {
  constructor(
    readonly path: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, { signal, headers: { Accept: "application/json" } });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(path, 0, `cannot reach pipescope (${String(e)}) — is it still running?`);
  }
  if (!response.ok) {
    const body = await response.text();
    throw new ApiError(path, response.status, `${path}: ${response.status} ${body.slice(0, 300)}`);
  }
  return (await response.json()) as T;
}

export interface Health {
  status: string;
  version: string;
  uptime_s: number;
}
