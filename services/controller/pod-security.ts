// Pod Security "restricted" settings for every actor pod, and the scratch volumes that let images run
// with a read-only root file system as a non-root user.

import type { V1Container, V1PodSecurityContext, V1SecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';

/** The UID and GID the Parley images run as (see docker/Dockerfile). */
export const RUN_AS_USER = 10001;

export function podSecurityContext(): V1PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_USER,
    runAsGroup: RUN_AS_USER,
    fsGroup: RUN_AS_USER,
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** No privilege escalation, every capability dropped, read-only root file system. */
export function containerSecurityContext(): V1SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** Writable scratch space: /tmp for everyone; /cache (HOME, model and compiler caches) and /dev/shm for GPU containers. */
export function scratchVolumes(withGpuCaches: boolean): V1Volume[] {
  const vols: V1Volume[] = [{ name: 'tmp', emptyDir: {} }];
  if (withGpuCaches) {
    vols.push({ name: 'cache', emptyDir: {} });
    // NCCL and PyTorch data loaders need more shared memory than the runtime's 64 MiB default.
    vols.push({ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: '16Gi' } });
  }
  return vols;
}

export function scratchMounts(withGpuCaches: boolean): V1VolumeMount[] {
  const mounts: V1VolumeMount[] = [{ name: 'tmp', mountPath: '/tmp' }];
  if (withGpuCaches) mounts.push({ name: 'cache', mountPath: '/cache' }, { name: 'dshm', mountPath: '/dev/shm' });
  return mounts;
}

/** Environment that points Python/Hugging Face/Triton caches at /cache (the root file system is read-only). */
export function cacheEnv(): NonNullable<V1Container['env']> {
  return [
    { name: 'HOME', value: '/cache' },
    { name: 'HF_HOME', value: '/cache/huggingface' },
    { name: 'XDG_CACHE_HOME', value: '/cache' },
    { name: 'TRITON_CACHE_DIR', value: '/cache/triton' },
    { name: 'VLLM_NO_USAGE_STATS', value: '1' },
    { name: 'DO_NOT_TRACK', value: '1' },
  ];
}
