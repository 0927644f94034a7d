/**
 * `vigil validate`'s check of cluster.key_file: the same loadKey the cluster runs at start
 * (src/cluster/cluster.ts: exists, mode 0600, not empty), plus a read error turned into
 * a sentence. Loaded lazily: the cluster module is not needed to check a file otherwise.
 */
export async function checkKeyFile(file: string): Promise<string | undefined> {
  const { loadKey } = await import('../cluster/cluster.js');
  try {
    loadKey(file);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'VIGIL_KEY_FILE') return e.message;
    return `cluster.key_file ${file}: cannot read (${e.code ?? e.message})`;
  }
}
