/** The studio's places, in navigation order. Alt+1..6 jumps to each. */
import type { Component } from 'svelte';
import '../lib/studio-ui.css';
import type { PlaceId } from '../lib/studio.svelte';
import Compose from './Compose.svelte';
import Generate from './Generate.svelte';
import Library from './Library.svelte';
import Compare from './Compare.svelte';
import Settings from './Settings.svelte';
import Export from './Export.svelte';

export interface Place {
  id: PlaceId;
  label: string;
  hint: string;
  component: Component;
}

export const PLACES: Place[] = [
  { id: 'compose', label: 'Compose', hint: 'Build a constraint set', component: Compose },
  { id: 'generate', label: 'Generate', hint: 'Run a model on a set', component: Generate },
  { id: 'library', label: 'Library', hint: 'Sets, presets and past runs', component: Library },
  { id: 'compare', label: 'Compare', hint: 'Runs side by side', component: Compare },
  { id: 'export', label: 'Export', hint: 'Export runs, import recipes', component: Export },
  { id: 'settings', label: 'Settings', hint: 'Device, model folders, theme', component: Settings },
];
