import { describe, expect, it } from 'vitest';
import { parseRelease, releaseAtLeast, releaseHas } from './releases.js';

describe('kernel releases > which features a release has', () => {
  it('given uname -r texts, when parsed, then major and minor come out, and text naming no release is null', () => {
    expect(parseRelease('6.1.0-28-amd64')).toEqual([6, 1]);
    expect(parseRelease('6.12.118')).toEqual([6, 12]);
    expect(parseRelease('')).toBeNull();
    expect(parseRelease(null)).toBeNull();
  });

  it('given the features first releases, when asked, then 6.1 has DMA ownership but neither iommufd nor the cdev; 6.2 has iommufd; 6.6 the cdev; an unknown release everything', () => {
    expect(releaseHas('6.1.192', 'dmaOwnership')).toBe(true);
    expect(releaseHas('6.1.192', 'iommufd')).toBe(false);
    expect(releaseHas('6.2.0', 'iommufd')).toBe(true);
    expect(releaseHas('6.5.13', 'vfioDeviceCdev')).toBe(false);
    expect(releaseHas('6.6.0', 'vfioDeviceCdev')).toBe(true);
    expect(releaseHas('5.15.0', 'dmaOwnership')).toBe(false);
    expect(releaseHas('7.0.1', 'hwptAlloc')).toBe(true);
    expect(releaseHas(undefined, 'vfioDeviceCdev')).toBe(true);
  });

  it('given more release texts than the parse memo keeps, asked twice in turn, when compared, then every answer is the parsed release\'s', () => {
    const texts = Array.from({ length: 600 }, (_, i) => `${5 + (i % 3)}.${i % 20}.${i}-test`);
    for (const round of [1, 2]) {
      for (const t of texts) {
        const [major, minor] = parseRelease(t)!;
        expect([round, t, releaseAtLeast(t, [6, 10])]).toEqual([round, t, major > 6 || (major === 6 && minor >= 10)]);
      }
    }
    expect(releaseAtLeast('', [9, 9])).toBe(true);
    expect(releaseAtLeast('not a release', [9, 9])).toBe(true);
  });
});
