//! Rendering Helm charts with berth's own engine (no helm binary at run time).
