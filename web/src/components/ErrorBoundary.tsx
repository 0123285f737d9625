import { Component, type ComponentChildren } from 'preact';
import { ErrorBox } from './ui';

/** Keeps a crashing page from blanking the whole UI: shows the error instead. */
export class ErrorBoundary extends Component<{ children: ComponentChildren }, { error?: Error }> {
  state: { error?: Error } = {};
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  render() {
    if (this.state.error) return <ErrorBox title="This page failed" error={this.state.error} />;
    return this.props.children;
  }
}
