from raysearch.analysis.analyzer import Analyzer, AnalyzerSettings, analyze_document

__all__ = ["Analyzer", "AnalyzerSettings", "analyze_document"]
