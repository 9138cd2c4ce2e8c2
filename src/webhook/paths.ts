// The webhook's two paths: the pod-label entry and the namespace-label entry of the
// MutatingWebhookConfiguration. Their own module, so that writing the configuration
// (`webhook-config`) does not load the Fastify app that serves them.
export const MUTATE_PATH = '/mutate';
export const MUTATE_NAMESPACE_PATH = '/mutate/namespace';
