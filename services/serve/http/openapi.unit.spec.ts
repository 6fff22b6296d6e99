import { describe, expect, it } from 'vitest';
import { TABLE_NAMES } from '../analytics/analyticsQueries.js';
import { buildOpenApi } from './openapi.js';

describe('OpenAPI > the dashboard data endpoints', () => {
  it('issue 21: /v1/analytics/* (summary, compliance, every table, a violation story) are in the document /docs renders', () => {
    const doc = buildOpenApi('test') as { paths: Record<string, Record<string, { parameters: { name: string; schema: { enum?: string[] } }[]; 'x-required-role'?: string }>> };
    for (const path of ['/v1/analytics/summary', '/v1/analytics/compliance', '/v1/analytics/tables/{name}', '/v1/analytics/violations/{key}/story', '/v1/analytics/facets', '/v1/analytics/status']) {
      expect(doc.paths[path]?.get?.['x-required-role'], path).toBe('read');
    }
    const name = doc.paths['/v1/analytics/tables/{name}']?.get?.parameters.find((p) => p.name === 'name');
    expect(name?.schema.enum).toEqual([...TABLE_NAMES]);
    expect(doc.paths['/v1/admin/demo-fleet']?.post?.['x-required-role']).toBe('admin');
  });
});
