pub struct InbandDetector;
