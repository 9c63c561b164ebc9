// Public surface of services/policy: the Policy service, its backends, chat rendering with
// token-in-token-out, the tool-call parser, weight sync and the CLI pieces. Other services import only this file.

export type { BackendFinishReason, BackendGenerateInput, BackendGenerateOutput, PolicyBackend, Sampling } from './backend.js';
export { ChatModel, loadChatModel, type RenderOptions as TemplateRenderOptions, type TemplateMessage, type TemplateTool } from './chat-model.js';
export { addServePolicyOptions, registerPolicyCommands, renderConversation, renderConversationFile, servePolicyCommand, type RenderedConversation } from './cli.js';
export { PolicyConfigSchema, resolvePolicyConfig, type PolicyConfig, type PolicyConfigInput } from './config.js';
export {
  fromOpenAIMessages,
  fromOpenAITools,
  fromProtoMessages,
  fromProtoTools,
  validateConversation,
  type ConversationMessage,
  type ConversationTool,
  type ConversationToolCall,
} from './conversation.js';
export { policyMetrics, type PolicyMetrics } from './metrics.js';
export { OpenAICompatibleBackend, parseCompletionResponse, type OpenAICompatibleOptions } from './openai-backend.js';
export { createPolicyService, type PolicyMethods, type PolicyServiceConfig, type PolicyServiceDeps, type PolicyServiceImpl } from './policy-service.js';
export { PrefixCache } from './prefix-cache.js';
export { ConcurrencyLimit, backoffDelay, withRetries, type RetryPolicy } from './retry.js';
export { createBackend, servePolicy, type RunningPolicy, type ServePolicyOptions } from './serve.js';
export { buildTito, driftReport, driftTokens, tokenDifference, type DriftReport, type TitoOptions, type TitoResult, type TitoState } from './tito.js';
export { parseAssistantText, type ParsedAssistantText, type ParsedToolCall } from './tool-call-parser.js';
export { WeightFollower, followerDurable, type PolicyWeightsPort, type WeightFollowerDeps, type WeightFollowerOptions, type WeightFollowerState } from './weight-follower.js';
export { WeightsManager, type LoadedWeights } from './weights.js';
export { WeightsFetcher, loadPath, parseObjectUri } from './weights-fetch.js';
